"""The inotify watcher on the real file system: bursts, new directories, moves, ignore rules,
queue overflow, the root deleted and recreated, reconcile scans, the watch limit, cancellation."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing
from git_repos import GIT_ENV, git, make_repo

import engine
from adapters import InotifyWatcher, open_watcher
from adapters.fs._watch_rules import IgnoreRules
from engine import Change, ChangeBatch, ChangeKind

REPO = Path(__file__).resolve().parent.parent

Predicate = Callable[[list[Change]], bool]


async def gather(
    watcher: InotifyWatcher, done: Predicate, *, limit: float = 20.0
) -> tuple[list[ChangeBatch], list[Change]]:
    """Iterate until ``done(all changes so far)``; ``limit`` only guards against a hang."""
    batches: list[ChangeBatch] = []
    changes: list[Change] = []
    with trio.fail_after(limit):
        async for batch in watcher:
            assert batch.changes, "a batch is never empty"
            batches.append(batch)
            changes.extend(batch.changes)
            if done(changes):
                break
    return batches, changes


def _append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def _read_int(path: str) -> int:
    with open(path) as f:
        return int(f.read())


def paths(changes: list[Change], kind: ChangeKind | None = None) -> set[str]:
    return {c.path for c in changes if kind is None or c.kind is kind}


def has(*wanted: str, kind: ChangeKind | None = None) -> Predicate:
    return lambda changes: set(wanted) <= paths(changes, kind)


async def test_created_modified_deleted(tmp_path: Path) -> None:
    async with open_watcher(tmp_path) as w:
        (tmp_path / "f.txt").write_text("one")
        _, changes = await gather(w, has("f.txt"))
        assert changes == [Change(ChangeKind.CREATED, "f.txt")]
        _append(tmp_path / "f.txt", "two")
        _, changes = await gather(w, has("f.txt"))
        assert changes == [Change(ChangeKind.MODIFIED, "f.txt")]
        (tmp_path / "f.txt").unlink()
        _, changes = await gather(w, has("f.txt"))
        assert changes == [Change(ChangeKind.DELETED, "f.txt")]
        (tmp_path / "d").mkdir()
        _, changes = await gather(w, has("d"))
        assert changes == [Change(ChangeKind.CREATED, "d", is_dir=True)]
        assert w.root == tmp_path and w.statistics().root_present


async def test_burst_of_modifications_and_a_new_directory_of_files(tmp_path: Path) -> None:
    for i in range(2000):
        (tmp_path / f"f{i:04}.txt").write_text("before")
    async with open_watcher(tmp_path) as w:
        for i in range(2000):
            (tmp_path / f"f{i:04}.txt").write_text(f"after {i}")
        (tmp_path / "burst").mkdir()
        for i in range(500):
            (tmp_path / "burst" / f"n{i:03}").write_text("x")
        expected_modified = {f"f{i:04}.txt" for i in range(2000)}
        expected_created = {"burst"} | {f"burst/n{i:03}" for i in range(500)}

        def complete(changes: list[Change]) -> bool:
            return expected_modified <= paths(changes, ChangeKind.MODIFIED) and (
                expected_created <= paths(changes, ChangeKind.CREATED)
            )

        batches, changes = await gather(w, complete)
        assert paths(changes) == expected_modified | expected_created
        # Repeated events for one path in one batch are reported once.
        for batch in batches:
            assert len({c.path for c in batch.changes}) == len(batch.changes)


async def test_files_made_before_a_new_directory_is_watched_are_reported(tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    (staging / "tree" / "deep" / "deeper").mkdir(parents=True)
    for i in range(50):
        (staging / "tree" / "deep" / "deeper" / f"f{i}").write_text("x")
    root = tmp_path / "root"
    root.mkdir()
    async with open_watcher(root) as w:
        (staging / "tree").rename(root / "tree")  # a whole tree arrives at once
        os.makedirs(root / "a" / "b" / "c")
        (root / "a" / "b" / "c" / "made-fast").write_text("x")
        want = {f"tree/deep/deeper/f{i}" for i in range(50)} | {"a/b/c/made-fast"}
        _, changes = await gather(w, lambda ch: want <= paths(ch, ChangeKind.CREATED))
        assert {"tree", "tree/deep", "a", "a/b", "a/b/c"} <= paths(changes, ChangeKind.CREATED)
        # The new directories are watched: a change deep inside is seen.
        (root / "tree" / "deep" / "deeper" / "f0").write_text("changed")
        _, changes = await gather(w, has("tree/deep/deeper/f0"))
        assert changes[-1].kind is ChangeKind.MODIFIED


async def test_moves(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "sub" / "inner.txt").write_text("i")
    (root / "file.txt").write_text("f")
    (outside / "incoming").mkdir(parents=True)
    (outside / "incoming" / "x.txt").write_text("x")
    async with open_watcher(root) as w:
        (root / "file.txt").rename(root / "renamed.txt")
        _, changes = await gather(w, has("renamed.txt"))
        assert changes == [Change(ChangeKind.MOVED, "renamed.txt", old_path="file.txt")]

        (root / "dir").rename(root / "moved-dir")
        _, changes = await gather(w, has("moved-dir"))
        assert changes == [Change(ChangeKind.MOVED, "moved-dir", old_path="dir", is_dir=True)]
        # Watches below the moved directory now report under the new path.
        (root / "moved-dir" / "sub" / "inner.txt").write_text("changed")
        _, changes = await gather(w, has("moved-dir/sub/inner.txt"))
        assert changes == [Change(ChangeKind.MODIFIED, "moved-dir/sub/inner.txt")]

        (root / "renamed.txt").rename(outside / "gone.txt")
        _, changes = await gather(w, has("renamed.txt"))
        assert changes == [Change(ChangeKind.DELETED, "renamed.txt")]

        (root / "moved-dir").rename(outside / "gone-dir")
        _, changes = await gather(w, has("moved-dir"))
        assert paths(changes, ChangeKind.DELETED) == {
            "moved-dir",
            "moved-dir/sub",
            "moved-dir/sub/inner.txt",
        }
        (outside / "gone-dir" / "sub" / "inner.txt").write_text("no longer watched")

        (outside / "incoming").rename(root / "incoming")
        _, changes = await gather(w, has("incoming/x.txt"))
        assert paths(changes, ChangeKind.CREATED) == {"incoming", "incoming/x.txt"}
        assert w.statistics().watches == 2  # root and incoming


async def test_replacing_a_file_by_rename(tmp_path: Path) -> None:
    (tmp_path / "doc").write_text("old")
    async with open_watcher(tmp_path) as w:
        (tmp_path / "doc.new").write_text("new")
        os.replace(tmp_path / "doc.new", tmp_path / "doc")
        _, changes = await gather(w, has("doc"))
        # Either the temporary file was seen (then it moved onto doc) or it was already gone
        # when its events were read (then doc was simply modified).
        assert changes[-1] in (
            Change(ChangeKind.MOVED, "doc", old_path="doc.new"),
            Change(ChangeKind.MODIFIED, "doc"),
        )
        assert "doc.new" not in paths(changes, ChangeKind.DELETED)


async def test_scoped_file_system_writes_show_as_modifications(tmp_path: Path) -> None:
    from adapters import ScopedFileSystem

    fs = ScopedFileSystem(tmp_path)
    await fs.write_text("notes.md", "v1")
    async with open_watcher(tmp_path) as w:
        await fs.write_text("notes.md", "v2")  # temporary file, then rename over
        _, changes = await gather(w, has("notes.md"))
        assert changes == [Change(ChangeKind.MODIFIED, "notes.md")]


async def test_ignore_rules(tmp_path: Path) -> None:
    (tmp_path / "node_modules" / "pkg").mkdir(parents=True)
    async with open_watcher(tmp_path, ignore=["*.log", "build", "docs/_gen"]) as w:
        (tmp_path / "node_modules" / "pkg" / "index.js").write_text("x")
        (tmp_path / "__pycache__").mkdir()
        (tmp_path / "__pycache__" / "m.pyc").write_text("x")
        (tmp_path / "debug.log").write_text("x")
        (tmp_path / "build" / "out").mkdir(parents=True)
        (tmp_path / "build" / "out" / "a.o").write_text("x")
        (tmp_path / "docs" / "_gen").mkdir(parents=True)
        (tmp_path / "docs" / "_gen" / "page.html").write_text("x")
        (tmp_path / "docs" / "kept.md").write_text("x")
        _, changes = await gather(w, has("docs/kept.md"))
        assert paths(changes) == {"docs", "docs/kept.md"}
        assert w.statistics().watches == 2  # root and docs


async def test_git_internals_only_reveal_commits_branch_switches_and_staging(
    tmp_path: Path,
) -> None:
    make_repo(tmp_path, files={"a.txt": "1"})
    async with open_watcher(tmp_path) as w:
        (tmp_path / "a.txt").write_text("2")
        git(tmp_path, "commit", "-qam", "second")
        _, changes = await gather(w, has(".git/refs/heads/main", ".git/index", "a.txt"))
        git_paths = {p for p in paths(changes) if p.startswith(".git")}
        assert git_paths <= {".git/refs/heads/main", ".git/ORIG_HEAD", ".git/HEAD", ".git/index"}
        git(tmp_path, "checkout", "-q", "-b", "feature/x")
        _, changes = await gather(w, has(".git/HEAD", ".git/refs/heads/feature/x"))
        assert {p for p in paths(changes) if p.startswith(".git")} - {".git/index"} == {
            ".git/HEAD",
            ".git/refs/heads/feature/x",
        }
        git(tmp_path, "pack-refs", "--all")
        _, changes = await gather(w, has(".git/packed-refs"))
        assert ".git/index" not in paths(changes)


async def test_staging_alone_reports_the_index(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"a.txt": "1"})
    (tmp_path / "a.txt").write_text("2")
    async with open_watcher(tmp_path) as w:
        git(tmp_path, "add", "a.txt")  # index.lock written, then renamed over index
        _, changes = await gather(w, has(".git/index"))
        assert [(c.kind, c.path) for c in changes] == [(ChangeKind.MODIFIED, ".git/index")]
        git(tmp_path, "reset", "-q", "a.txt")
        _, changes = await gather(w, has(".git/index"))
        assert [(c.kind, c.path) for c in changes] == [(ChangeKind.MODIFIED, ".git/index")]


async def test_queue_overflow_ends_in_a_rescan_that_reports_what_changed(tmp_path: Path) -> None:
    max_queued = _read_int("/proc/sys/fs/inotify/max_queued_events")
    for name in ("a", "b", "doomed", "touched"):
        (tmp_path / name).write_text("0")
    async with open_watcher(tmp_path) as w:
        # Nobody reads while more events than the queue holds are generated
        # (alternating files, so the kernel cannot merge consecutive events).
        fds = [os.open(tmp_path / n, os.O_WRONLY | os.O_APPEND) for n in ("a", "b")]
        try:
            for _ in range(max_queued // 2 + 100):
                os.write(fds[0], b"x")
                os.write(fds[1], b"y")
        finally:
            for fd in fds:
                os.close(fd)
        # These happen after the queue is full: only a rescan can find them.
        (tmp_path / "doomed").unlink()
        (tmp_path / "touched").write_text("changed size")
        (tmp_path / "late-dir").mkdir()
        (tmp_path / "late-dir" / "late-file").write_text("x")
        want = {"doomed", "touched", "late-dir", "late-dir/late-file"}
        batches, changes = await gather(w, lambda ch: want <= paths(ch))
        assert w.statistics().overflows >= 1
        rescanned = [b for b in batches if b.rescan]
        assert rescanned
        found = {c.path: c.kind for b in rescanned for c in b.changes}
        assert found["doomed"] is ChangeKind.DELETED
        assert found["touched"] is ChangeKind.MODIFIED
        assert found["late-dir/late-file"] is ChangeKind.CREATED
        assert {"a", "b"} <= paths(changes, ChangeKind.MODIFIED)
        # Watching goes on normally afterwards, and the new directory is watched.
        (tmp_path / "late-dir" / "after").write_text("x")
        batches, _ = await gather(w, has("late-dir/after"))
        assert not batches[-1].rescan


async def test_root_deleted_and_recreated_is_rearmed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f").write_text("x")
    (root / "top").write_text("x")
    async with open_watcher(root) as w:
        shutil.rmtree(root)
        _, changes = await gather(w, has("sub", "sub/f", "top", kind=ChangeKind.DELETED))
        assert not w.statistics().root_present
        root.mkdir()
        (root / "again").write_text("x")
        batches, _ = await gather(w, has("again", kind=ChangeKind.CREATED))
        assert batches[-1].rescan
        assert w.statistics().root_present
        (root / "nested").mkdir()
        (root / "nested" / "later").write_text("x")
        _, changes = await gather(w, has("nested/later"))
        assert changes[-1].kind is ChangeKind.CREATED


async def test_root_moved_away_and_back(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "f").write_text("x")
    async with open_watcher(root) as w:
        root.rename(tmp_path / "elsewhere")
        _, changes = await gather(w, has("f", kind=ChangeKind.DELETED))
        (tmp_path / "elsewhere" / "f").write_text("not watched any more")
        (tmp_path / "elsewhere").rename(root)
        _, changes = await gather(w, has("f", kind=ChangeKind.CREATED))
        (root / "f").write_text("watched again")
        _, changes = await gather(w, has("f"))
        assert changes[-1].kind is ChangeKind.MODIFIED


async def test_reconcile_scan_catches_what_the_kernel_did_not_report(tmp_path: Path) -> None:
    (tmp_path / "quiet").mkdir()
    async with open_watcher(tmp_path, reconcile_interval=0.2) as w:
        # Take the directory's watch away behind the watcher's back, as if the kernel had
        # dropped it: events under it are no longer delivered.
        w._watches.remove(w._watches._path_wd["quiet"])
        (tmp_path / "quiet" / "unseen").write_text("x")
        batches, changes = await gather(w, has("quiet/unseen"))
        assert batches[-1].rescan
        assert changes[-1] == Change(ChangeKind.CREATED, "quiet/unseen")
        assert w.statistics().rescans >= 1
        (tmp_path / "quiet" / "seen").write_text("x")  # the reconcile re-armed the watch
        batches, _ = await gather(w, has("quiet/seen"))
        assert not batches[-1].rescan


async def test_odd_names(tmp_path: Path) -> None:
    odd = ["with space", "new\nline", "ünïcödé", os.fsdecode(b"latin1-\xe9")]
    async with open_watcher(tmp_path) as w:
        for name in odd:
            (tmp_path / name).write_text("x")
        _, changes = await gather(w, has(*odd))
        assert paths(changes, ChangeKind.CREATED) == set(odd)


async def test_cancelled_iteration_loses_nothing(tmp_path: Path) -> None:
    async with open_watcher(tmp_path) as w:
        with trio.move_on_after(0.05) as scope:
            await w.__anext__()
        assert scope.cancelled_caught
        (tmp_path / "after-cancel").write_text("x")
        with trio.CancelScope() as scope:
            scope.cancel()
            await w.__anext__()  # cancelled before it could return; the event stays queued
        _, changes = await gather(w, has("after-cancel"))
        assert changes == [Change(ChangeKind.CREATED, "after-cancel")]


async def test_close_wakes_a_waiting_task_and_releases_the_descriptor(tmp_path: Path) -> None:
    fds_before = set(os.listdir("/proc/self/fd"))
    ended: list[str] = []
    async with open_watcher(tmp_path) as w:
        assert len(set(os.listdir("/proc/self/fd")) - fds_before) == 1

        async def consume() -> None:
            async for _ in w:
                pass
            ended.append("stopped")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await w.__anext__()
            await w.aclose()
        await w.aclose()  # idempotent
        with pytest.raises(StopAsyncIteration):
            await w.__anext__()
    assert ended == ["stopped"]
    assert set(os.listdir("/proc/self/fd")) == fds_before


async def _stream_of_writes(
    watcher: InotifyWatcher, root: Path, count: int, gap: float
) -> tuple[list[ChangeBatch], list[float]]:
    """Write ``count`` new files ``gap`` seconds apart while consuming; batches and their times."""
    batches: list[ChangeBatch] = []
    times: list[float] = []

    async def write() -> None:
        for i in range(count):
            (root / f"{gap}-{i:03}").write_text("x")
            await trio.sleep(gap)

    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        nursery.start_soon(write)
        while sum(len(b.changes) for b in batches) < count:
            batches.append(await watcher.__anext__())
            times.append(trio.current_time() - start)
    return batches, times


async def test_debounce_window_and_cap(tmp_path: Path, autojump_clock: trio.abc.Clock) -> None:
    async with open_watcher(tmp_path, quiet=0.005, cap=0.05, reconcile_interval=None) as w:
        # Spaced wider than the quiet window: one batch each.
        batches, _ = await _stream_of_writes(w, tmp_path, 5, 0.02)
        assert [len(b.changes) for b in batches] == [1] * 5
        # A steady stream closer than the quiet window: batches are cut by the cap.
        batches, times = await _stream_of_writes(w, tmp_path, 100, 0.001)
        assert len({c.path for b in batches for c in b.changes}) == 100
        assert 2 <= len(batches) <= 10
        assert all(b - a <= 0.05 + 0.002 for a, b in zip([0.0, *times], times, strict=False))


WATCH_LIMIT_SCRIPT = """
import sys, os, trio
from adapters import open_watcher
from engine import WatchLimitError

async def main(root):
    try:
        async with open_watcher(root) as w:
            if sys.argv[2] == "grow":
                for i in range(10):
                    os.mkdir(os.path.join(root, f"new{i}"))
                async for batch in w:
                    pass
    except WatchLimitError as exc:
        print("WatchLimitError", exc.limit, exc.path)

trio.run(main, sys.argv[1])
"""


@pytest.mark.parametrize("when", ["open", "grow"])
async def test_exhausting_the_watch_limit_is_a_typed_error(tmp_path: Path, when: str) -> None:
    """In a user namespace whose inotify watch limit is 5, a tree needing more watches fails."""
    if when == "open":
        for i in range(10):
            (tmp_path / f"d{i}").mkdir()
    command = (
        f'echo 5 > /proc/sys/user/max_inotify_watches && exec "{sys.executable}" -c "$0" "$1" "$2"'
    )
    unshare = ["unshare", "--user", "--map-root-user", "sh", "-c", command]
    result = await trio.run_process(
        [*unshare, WATCH_LIMIT_SCRIPT, str(tmp_path), when],
        cwd=REPO,
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert out.startswith("WatchLimitError 5 "), out


def test_ignore_rules_are_pure_path_functions() -> None:
    rules = IgnoreRules.with_extra(["*.log", "dist", "src/*/gen"])
    assert rules.watch_dir("") and not rules.report("", True)
    assert not rules.watch_dir("node_modules") and not rules.report("a/node_modules/x", False)
    assert not rules.report("x/__pycache__/m.pyc", False)
    assert not rules.report("logs/today.log", False) and rules.report("logs/today.txt", False)
    assert not rules.watch_dir("dist") and not rules.report("pkg/dist/x", False)
    assert not rules.report("src/a/gen/file", False) and rules.report("src/a/real", False)
    assert not rules.report(".notes.md.0a1b2c.scribe-tmp", False)
    assert rules.watch_dir(".git") and rules.watch_dir(".git/refs/heads/feature")
    assert not rules.watch_dir(".git/objects") and not rules.watch_dir(".git/logs")
    assert rules.report(".git/HEAD", False) and rules.report(".git/refs/heads/a/b", False)
    assert rules.report(".git/packed-refs", False) and rules.report(".git/ORIG_HEAD", False)
    assert rules.report(".git/refs/remotes/origin/main", False)
    assert rules.report(".git/index", False) and not rules.report(".git/index.lock", False)
    assert not rules.report(".git/HEAD.lock", False) and not rules.report(".git/config", False)
    assert not rules.report(".git/refs/heads/main.lock", False)
    assert not rules.report(".git/refs/heads", True)
    bare = IgnoreRules.with_extra([], defaults=False)
    assert bare.report("node_modules/x", False) and not bare.report(".git/objects/ab/cd", False)
    assert issubclass(engine.WatchLimitError, engine.ScribeError)


async def test_git_switch_is_seen_in_a_repository_made_by_the_adapter(tmp_path: Path) -> None:
    from adapters import open_repository

    make_repo(tmp_path, files={"a": "1"})
    repo = await open_repository(tmp_path, env=GIT_ENV)
    async with open_watcher(tmp_path) as w:
        (tmp_path / "a").write_text("2")
        await repo.add(["a"])
        await repo.commit("second")
        _, changes = await gather(w, has(".git/refs/heads/main", "a"))
        assert ".git/index" in paths(changes)  # staged through the adapter
