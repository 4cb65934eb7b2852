"""The git adapter against real repositories: every status shape, log, diffs, errors, admission."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.lowlevel
import trio.testing
from git_repos import GIT_ENV, git, make_repo, real

import engine
from adapters import GitRepository, open_repository
from engine import (
    GitCommandError,
    GitNotFoundError,
    IgnoredEntry,
    NotARepositoryError,
    OrdinaryEntry,
    RenamedEntry,
    StaleLockError,
    UnmergedEntry,
    UntrackedEntry,
)

ODD_NAMES = [
    "with space.txt",
    "new\nline.txt",
    "tab\there.txt",
    "ünïcödé-文件.txt",
    'quote"and\\backslash.txt',
    " leading-space",
    "-starts-with-dash",
    "dir with space/inner file.txt",
]


async def _open(path: Path) -> GitRepository:
    return await open_repository(path, env=GIT_ENV)


def _by_path(entries: tuple[engine.StatusEntry, ...]) -> dict[str, engine.StatusEntry]:
    return {e.path: e for e in entries}


async def test_clean_repository_reports_branch_and_no_entries(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"a.txt": "a\n"})
    repo = await _open(tmp_path)
    status = await repo.status()
    assert status.branch.head == "main"
    assert status.branch.oid == git(tmp_path, "rev-parse", "HEAD").strip()
    assert status.branch.upstream is None and status.branch.ahead is None
    assert status.entries == () and status.clean
    assert repo.root == real(tmp_path)
    assert repo.git_dir == real(tmp_path) / ".git"


async def test_unborn_branch(tmp_path: Path) -> None:
    make_repo(tmp_path)
    (tmp_path / "x").write_text("x")
    repo = await _open(tmp_path)
    status = await repo.status()
    assert status.branch.oid is None
    assert status.branch.head == "main"
    assert status.untracked == ("x",)
    assert await repo.head() is None
    assert await repo.current_branch() == "main"
    assert await repo.log() == ()


async def test_staged_unstaged_added_deleted_and_type_changed(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"m.txt": "1\n", "d.txt": "d\n", "both.txt": "b\n", "t.txt": "t\n"})
    (tmp_path / "m.txt").write_text("2\n")  # unstaged modification
    (tmp_path / "both.txt").write_text("b2\n")
    git(tmp_path, "add", "both.txt")
    (tmp_path / "both.txt").write_text("b3\n")  # staged and unstaged
    (tmp_path / "new.txt").write_text("n\n")
    git(tmp_path, "add", "new.txt")  # added
    git(tmp_path, "rm", "-q", "d.txt")  # staged deletion
    (tmp_path / "t.txt").unlink()
    (tmp_path / "t.txt").symlink_to("m.txt")  # type change in the work tree
    repo = await _open(tmp_path)
    entries = _by_path((await repo.status()).entries)
    m, both, new, d, t = (entries[p] for p in ("m.txt", "both.txt", "new.txt", "d.txt", "t.txt"))
    assert isinstance(m, OrdinaryEntry) and (m.index, m.worktree) == (".", "M")
    assert isinstance(both, OrdinaryEntry) and (both.index, both.worktree) == ("M", "M")
    assert isinstance(new, OrdinaryEntry) and (new.index, new.worktree) == ("A", ".")
    assert new.mode_head == "000000" and new.mode_index == "100644"
    assert isinstance(d, OrdinaryEntry) and (d.index, d.worktree) == ("D", ".")
    assert isinstance(t, OrdinaryEntry) and t.worktree == "T"
    assert m.submodule == "N..."
    assert len(m.oid_head) == 40


async def test_rename_in_index(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"old name.txt": "content that is long enough to match\n" * 5})
    git(tmp_path, "mv", "old name.txt", "new\nname.txt")
    repo = await _open(tmp_path)
    (entry,) = (await repo.status()).entries
    assert isinstance(entry, RenamedEntry)
    assert (entry.path, entry.orig_path) == ("new\nname.txt", "old name.txt")
    assert not entry.copied and entry.score == 100
    assert entry.index == "R"


async def test_copy_shape_parses(tmp_path: Path) -> None:
    """A copy (``C`` score) as git prints it with copy detection turned on."""
    from adapters.git._porcelain import parse_status

    body = "shared line of text\n" * 20
    make_repo(tmp_path, files={"src.txt": body})
    (tmp_path / "src.txt").write_text(body + "changed\n")
    (tmp_path / "copy of.txt").write_text(body)
    git(tmp_path, "add", "--all")
    raw = git(tmp_path, "-c", "status.renames=copies", "status", "--porcelain=v2", "-z", "--branch")
    status = parse_status(raw.encode("utf-8", "surrogateescape"))
    copies = [e for e in status.entries if isinstance(e, RenamedEntry)]
    assert len(copies) == 1
    (copy,) = copies
    assert copy.copied and copy.index == "C"
    assert (copy.path, copy.orig_path) == ("copy of.txt", "src.txt")
    assert 0 < copy.score <= 100


async def test_conflicts_from_a_real_merge(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"both.txt": "base\n", "gone.txt": "base\n", "keep.txt": "k\n"})
    git(tmp_path, "checkout", "-q", "-b", "other")
    (tmp_path / "both.txt").write_text("theirs\n")
    (tmp_path / "gone.txt").write_text("theirs changed\n")
    (tmp_path / "added.txt").write_text("theirs added\n")
    git(tmp_path, "commit", "-qam", "theirs")
    git(tmp_path, "add", "added.txt")
    git(tmp_path, "commit", "-qm", "theirs add")
    git(tmp_path, "checkout", "-q", "main")
    (tmp_path / "both.txt").write_text("ours\n")
    git(tmp_path, "rm", "-q", "gone.txt")
    (tmp_path / "added.txt").write_text("ours added\n")
    git(tmp_path, "add", "--all")
    git(tmp_path, "commit", "-qm", "ours")
    git(tmp_path, "merge", "other", check=False)
    repo = await _open(tmp_path)
    status = await repo.status()
    conflicts = {e.path: e for e in status.conflicts}
    assert set(conflicts) == {"both.txt", "gone.txt", "added.txt"}
    assert (conflicts["both.txt"].index, conflicts["both.txt"].worktree) == ("U", "U")
    assert (conflicts["added.txt"].index, conflicts["added.txt"].worktree) == ("A", "A")
    assert (conflicts["gone.txt"].index, conflicts["gone.txt"].worktree) == ("D", "U")
    both = conflicts["both.txt"]
    assert isinstance(both, UnmergedEntry)
    assert len({both.oid_stage1, both.oid_stage2, both.oid_stage3}) == 3
    assert conflicts["added.txt"].oid_stage1 == "0" * 40  # no common ancestor version
    assert not status.clean
    names = {e.path: e.status for e in await repo.name_status()}
    assert names["both.txt"] == "M"  # against HEAD; the conflict itself shows in status()


async def test_untracked_and_ignored(tmp_path: Path) -> None:
    make_repo(tmp_path, files={".gitignore": "*.log\nbuild/\n"})
    (tmp_path / "notes.md").write_text("n")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "file.py").write_text("x")
    (tmp_path / "debug.log").write_text("l")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "out.o").write_text("o")
    repo = await _open(tmp_path)
    status = await repo.status()
    assert set(status.untracked) == {"notes.md", "deep/er/file.py"}
    assert status.ignored == ()
    with_ignored = await repo.status(ignored=True)
    assert set(with_ignored.ignored) == {"debug.log", "build/"}
    assert all(isinstance(e, UntrackedEntry | IgnoredEntry) for e in with_ignored.entries)
    assert status.clean is False


async def test_odd_paths_round_trip(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"seed": "s"})
    raw_name = os.fsdecode(b"latin1-\xe9.txt")  # not valid UTF-8
    names = [*ODD_NAMES, raw_name]
    for name in names:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"content of {name!r}\n")
    repo = await _open(tmp_path)
    assert set((await repo.status()).untracked) == set(names)
    await repo.add(names)
    staged = (await repo.status()).entries
    assert {e.path for e in staged} == set(names)
    assert all(isinstance(e, OrdinaryEntry) and e.index == "A" for e in staged)
    oid = await repo.commit("odd paths")
    for name in names:
        assert await repo.show_file(oid, name) == f"content of {name!r}\n".encode()
        (tmp_path / name).write_text("changed\n")
    stat = await repo.diff_stat()
    assert {f.path for f in stat.files} == set(names)
    assert all(f.added == 1 and f.deleted == 1 for f in stat.files)
    assert {e.path for e in await repo.name_status()} == set(names)
    (commit,) = await repo.log(5, paths=["new\nline.txt"])
    assert commit.oid == oid


async def test_upstream_ahead_and_behind(tmp_path: Path) -> None:
    origin = make_repo(tmp_path / "origin", files={"a": "1\n"})
    git(tmp_path, "clone", "-q", str(origin), "clone")
    clone = tmp_path / "clone"
    (clone / "b").write_text("local\n")
    git(clone, "add", "b")
    git(clone, "commit", "-qm", "local 1")
    (clone / "c").write_text("local\n")
    git(clone, "add", "c")
    git(clone, "commit", "-qm", "local 2")
    (origin / "d").write_text("remote\n")
    git(origin, "add", "d")
    git(origin, "commit", "-qm", "remote")
    git(clone, "fetch", "-q")
    repo = await _open(clone)
    branch = (await repo.status()).branch
    assert (branch.head, branch.upstream) == ("main", "origin/main")
    assert (branch.ahead, branch.behind) == (2, 1)


async def test_detached_head(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"a": "1"})
    first = git(tmp_path, "rev-parse", "HEAD").strip()
    (tmp_path / "a").write_text("2")
    git(tmp_path, "commit", "-qam", "second")
    git(tmp_path, "checkout", "-q", "--detach", first)
    repo = await _open(tmp_path)
    assert await repo.current_branch() is None
    assert await repo.head() == first
    branch = (await repo.status()).branch
    assert branch.detached and branch.head is None and branch.oid == first


async def test_log_count_since_paths_and_messages(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"a": "0"})
    old = datetime(2020, 1, 1, tzinfo=UTC)
    for i in range(1, 6):
        (tmp_path / ("a" if i % 2 else "b")).write_text(str(i))
        git(tmp_path, "add", "--all")
        stamp = (old + timedelta(days=365 * i)).isoformat()
        dates = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        git(tmp_path, "commit", "-q", "-m", f"subject {i}\n\nbody {i}\nline two", env=dates)
    repo = await _open(tmp_path)
    log = await repo.log(3)
    assert [c.subject for c in log] == ["subject 5", "subject 4", "subject 3"]
    assert log[0].body == "body 5\nline two"
    assert log[0].author_name == "Test Author" and log[0].author_email == "author@example.com"
    assert log[0].author_time == old + timedelta(days=365 * 5)
    assert log[0].parents == (log[1].oid,)
    assert len(await repo.log(100)) == 6
    assert [c.subject for c in await repo.log(10, paths=["b"])] == ["subject 4", "subject 2"]
    recent = await repo.log(10, since=old + timedelta(days=365 * 4 - 1))
    assert {c.subject for c in recent} >= {"subject 5", "subject 4"}
    assert "subject 3" not in {c.subject for c in recent}
    assert await repo.log(0) == ()
    with pytest.raises(GitCommandError):
        await repo.log(5, ref="no-such-branch")


async def test_log_of_a_merge_has_two_parents(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"a": "a\n"})
    git(tmp_path, "checkout", "-q", "-b", "side")
    (tmp_path / "s").write_text("s")
    git(tmp_path, "add", "s")
    git(tmp_path, "commit", "-qm", "side")
    git(tmp_path, "checkout", "-q", "main")
    (tmp_path / "m").write_text("m")
    git(tmp_path, "add", "m")
    git(tmp_path, "commit", "-qm", "main")
    git(tmp_path, "merge", "-q", "--no-edit", "side")
    repo = await _open(tmp_path)
    (merge,) = await repo.log(1)
    assert len(merge.parents) == 2


async def test_diff_stat_and_name_status(tmp_path: Path) -> None:
    body = "".join(f"line {i}\n" for i in range(30))
    make_repo(tmp_path, files={"mod.txt": "a\nb\nc\n", "del.txt": "x\n", "ren.txt": body})
    (tmp_path / "mod.txt").write_text("a\nB\nc\nd\n")
    (tmp_path / "del.txt").unlink()
    git(tmp_path, "mv", "ren.txt", "renamed.txt")
    (tmp_path / "bin.dat").write_bytes(b"\0\1\2\3")
    (tmp_path / "added.txt").write_text("1\n2\n")
    git(tmp_path, "add", "bin.dat", "added.txt")
    repo = await _open(tmp_path)
    stat = await repo.diff_stat()
    files = {f.path: f for f in stat.files}
    assert (files["mod.txt"].added, files["mod.txt"].deleted) == (2, 1)
    assert (files["del.txt"].added, files["del.txt"].deleted) == (0, 1)
    assert files["renamed.txt"].old_path == "ren.txt"
    assert files["bin.dat"].binary and files["bin.dat"].added is None
    assert (files["added.txt"].added, stat.files_changed) == (2, 5)
    assert (stat.insertions, stat.deletions) == (4, 2)
    names = {e.path: e for e in await repo.name_status()}
    assert {p: e.status for p, e in names.items()} == {
        "mod.txt": "M",
        "del.txt": "D",
        "renamed.txt": "R",
        "bin.dat": "A",
        "added.txt": "A",
    }
    assert names["renamed.txt"].old_path == "ren.txt" and names["renamed.txt"].score == 100
    cached = {e.path for e in await repo.name_status(cached=True)}
    assert cached == {"renamed.txt", "bin.dat", "added.txt"}  # unstaged edits left out
    first = git(tmp_path, "rev-parse", "HEAD").strip()
    git(tmp_path, "commit", "-qam", "second")
    against_first = await repo.diff_stat(first)
    assert {f.path for f in against_first.files} == set(files)
    assert (await repo.diff_stat()).files == ()


async def test_show_file_and_missing_path(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"f.txt": "v1\n"})
    (tmp_path / "f.txt").write_text("v2\n")
    git(tmp_path, "commit", "-qam", "v2")
    repo = await _open(tmp_path)
    assert await repo.show_file("HEAD", "f.txt") == b"v2\n"
    assert await repo.show_file("HEAD~1", "f.txt") == b"v1\n"
    with pytest.raises(GitCommandError) as info:
        await repo.show_file("HEAD", "missing.txt")
    assert info.value.exit_code == 128
    assert "missing.txt" in info.value.stderr
    assert info.value.command[-1] == "HEAD:missing.txt"
    assert isinstance(info.value, engine.ScribeError)


async def test_add_and_commit(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"a": "1"})
    repo = await _open(tmp_path)
    (tmp_path / "a").write_text("2")
    (tmp_path / "b").write_text("b")
    await repo.add(all=True)
    oid = await repo.commit("two files\n\nwith a body")
    assert oid == await repo.head() == git(tmp_path, "rev-parse", "HEAD").strip()
    assert (await repo.status()).clean
    (latest,) = await repo.log(1)
    assert (latest.subject, latest.body) == ("two files", "with a body")
    with pytest.raises(GitCommandError):
        await repo.commit("nothing staged")
    assert await repo.commit("empty", allow_empty=True) != oid


async def test_failing_hook_is_a_command_error(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"a": "1"})
    hook = tmp_path / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho refused by hook >&2\nexit 3\n")
    hook.chmod(0o755)
    repo = await _open(tmp_path)
    with pytest.raises(GitCommandError) as info:
        await repo.commit("x", allow_empty=True)
    assert "refused by hook" in info.value.stderr
    await repo.commit("x", allow_empty=True, no_verify=True)


async def test_writes_are_serialized_per_repository(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"a": "1"})
    hook = tmp_path / ".git" / "hooks" / "pre-commit"
    trace = tmp_path / ".git" / "trace"
    hook.write_text(f"#!/bin/sh\necho start >> '{trace}'\nsleep 0.2\necho end >> '{trace}'\n")
    hook.chmod(0o755)
    first, second = await _open(tmp_path), await _open(tmp_path)  # two objects, one lock
    async with trio.open_nursery() as nursery:
        for i, repo in enumerate((first, second, first)):
            nursery.start_soon(partial(repo.commit, f"commit {i}", allow_empty=True))
    assert trace.read_text().split() == ["start", "end"] * 3
    assert len(await first.log(10)) == 4


async def test_every_git_process_is_admitted_through_the_gate(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"a": "1"})
    gate = engine.PriorityLimiter(1)
    repo = await open_repository(tmp_path, gate=gate, env=GIT_ENV)
    assert repo.gate is gate
    results: list[object] = []

    async def read() -> None:
        results.append(await repo.head())

    async with trio.open_nursery() as nursery:
        async with gate.acquire():
            nursery.start_soon(read)
            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            assert gate.statistics().waiting == 2
            assert results == []
    assert len(results) == 2 and results[0] == results[1]
    assert gate.statistics().borrowed == 0


async def test_reads_run_in_parallel(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"a": "1"})
    gate = engine.PriorityLimiter(4)
    repo = await open_repository(tmp_path, gate=gate, env=GIT_ENV)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, gate.statistics().borrowed)
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        async with trio.open_nursery() as readers:
            for _ in range(4):
                readers.start_soon(repo.status)
        nursery.cancel_scope.cancel()
    assert peak >= 2


async def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(NotARepositoryError) as info:
        await open_repository(tmp_path)
    assert info.value.path == tmp_path
    with pytest.raises(NotARepositoryError):
        await open_repository(tmp_path / "missing")
    (tmp_path / "bare").mkdir()
    git(tmp_path / "bare", "init", "-q", "--bare")
    with pytest.raises(NotARepositoryError):
        await open_repository(tmp_path / "bare")


async def test_git_not_found(tmp_path: Path) -> None:
    make_repo(tmp_path)
    with pytest.raises(GitNotFoundError):
        await open_repository(tmp_path, git=str(tmp_path / "no-such-git"))
    assert issubclass(GitNotFoundError, engine.ScribeError)


async def test_stale_index_lock_is_reported_not_deleted(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"a": "1"})
    lock = tmp_path / ".git" / "index.lock"
    lock.write_text("")
    with pytest.raises(StaleLockError) as info:
        await open_repository(tmp_path)
    assert info.value.path == real(lock)
    assert str(real(lock)) in str(info.value)
    assert lock.exists()


async def test_opening_from_a_subdirectory_finds_the_root(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"sub/deeper/f": "1"})
    repo = await _open(tmp_path / "sub" / "deeper")
    assert repo.root == real(tmp_path)
    assert await repo.show_file("HEAD", "sub/deeper/f") == b"1"
