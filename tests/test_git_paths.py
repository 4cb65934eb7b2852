"""The git adapter's path-limited reads, a commit's changed files, and reads that never write the index."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from git_repos import GIT_ENV, git, make_repo

from adapters import GitRepository, open_repository
from engine import GitCommandError, InvalidArgumentError, OrdinaryEntry, UntrackedEntry

ODD = [
    "with space.txt",
    "new\nline.txt",
    "[1].txt",  # a glob would match "1.txt" too
    "*.md",
    ":(top)magic.txt",
    "-dash",
    "dir with space/inner file.txt",
]


async def _open(path: Path) -> GitRepository:
    return await open_repository(path, env=GIT_ENV)


def _write(root: Path, name: str, text: str) -> None:
    target = root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


async def test_status_and_diffs_limited_to_paths(tmp_path: Path) -> None:
    files = {name: f"old {i}\n" for i, name in enumerate([*ODD, "1.txt", "other.md"])}
    make_repo(tmp_path, files=files)
    for name in files:
        _write(tmp_path, name, "new\n")
    _write(tmp_path, "dir with space/untracked.txt", "u\n")
    _write(tmp_path, "loose.txt", "u\n")
    repo = await _open(tmp_path)
    whole = await repo.status()
    assert len(whole.entries) == len(files) + 2
    for name in ODD:
        one = await repo.status(paths=[name])
        assert one.branch == whole.branch
        assert [(type(e), e.path) for e in one.entries] == [(OrdinaryEntry, name)], name
        assert [f.path for f in (await repo.diff_stat(paths=[name])).files] == [name]
        assert [e.path for e in await repo.name_status(paths=[name])] == [name]
    # a directory stands for everything under it, untracked files included
    under = await repo.status(paths=["dir with space"])
    assert {(type(e), e.path) for e in under.entries} == {
        (OrdinaryEntry, "dir with space/inner file.txt"),
        (UntrackedEntry, "dir with space/untracked.txt"),
    }
    both = await repo.diff_stat(paths=["1.txt", "[1].txt"])
    assert sorted(f.path for f in both.files) == ["1.txt", "[1].txt"]
    # nothing asked for: no entries, but the branch headers
    none = await repo.status(paths=[])
    assert none.entries == () and none.branch == whole.branch
    assert (await repo.diff_stat(paths=[])).files == ()
    assert await repo.name_status(paths=()) == ()
    # the index against HEAD, limited too
    git(tmp_path, "add", "--", "other.md", "loose.txt")
    staged = await repo.name_status(cached=True, paths=["loose.txt", "1.txt"])
    assert [(e.status, e.path) for e in staged] == [("A", "loose.txt")]
    assert [f.path for f in (await repo.diff_stat(cached=True, paths=["*.md"])).files] == []


async def test_log_paths_are_literal(tmp_path: Path) -> None:
    make_repo(tmp_path, files={"1.txt": "a\n", "[1].txt": "b\n"})
    _write(tmp_path, "1.txt", "changed\n")
    git(tmp_path, "commit", "-qam", "only 1.txt")
    repo = await _open(tmp_path)
    assert [c.subject for c in await repo.log(10, paths=["[1].txt"])] == ["initial"]
    assert [c.subject for c in await repo.log(10, paths=["1.txt"])] == ["only 1.txt", "initial"]


@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside", "a/../../b", "", "nul\0byte"])
async def test_bad_paths_are_refused(tmp_path: Path, bad: str) -> None:
    make_repo(tmp_path, files={"a": "a\n"})
    repo = await _open(tmp_path)
    processes = repo.processes
    for call in (
        repo.status(paths=[bad]),
        repo.diff_stat(paths=["a", bad]),
        repo.name_status(paths=[bad]),
        repo.log(paths=[bad]),
    ):
        with pytest.raises(InvalidArgumentError):
            await call
    with pytest.raises(InvalidArgumentError):
        await repo.status(paths="a")  # one string is not a sequence of paths
    assert repo.processes == processes  # refused before any git process ran


async def test_commit_files_of_root_plain_and_merge_commits(tmp_path: Path) -> None:
    body = "".join(f"line {i}\n" for i in range(30))
    make_repo(tmp_path, files={"a": "a\n", "gone": "g\n", "moved": body, "odd [x].txt": "o\n"})
    repo = await _open(tmp_path)
    root = git(tmp_path, "rev-parse", "HEAD").strip()
    assert {(e.status, e.path) for e in await repo.commit_files(root)} == {
        ("A", "a"),
        ("A", "gone"),
        ("A", "moved"),
        ("A", "odd [x].txt"),
    }
    _write(tmp_path, "a", "A\n")
    git(tmp_path, "rm", "-q", "gone")
    git(tmp_path, "mv", "moved", "renamed")
    git(tmp_path, "commit", "-qam", "second")
    second = {e.path: e for e in await repo.commit_files("HEAD")}
    assert {p: e.status for p, e in second.items()} == {"a": "M", "gone": "D", "renamed": "R"}
    assert second["renamed"].old_path == "moved"
    # a merge shows what it brought into the branch: the side's files, not main's own
    git(tmp_path, "checkout", "-q", "-b", "side")
    _write(tmp_path, "from side", "s\n")
    git(tmp_path, "add", "from side")
    git(tmp_path, "commit", "-qm", "side")
    git(tmp_path, "checkout", "-q", "main")
    _write(tmp_path, "on main", "m\n")
    git(tmp_path, "add", "on main")
    git(tmp_path, "commit", "-qm", "main")
    git(tmp_path, "merge", "-q", "--no-edit", "side")
    (merge,) = await repo.log(1)
    assert len(merge.parents) == 2
    assert [(e.status, e.path) for e in await repo.commit_files(merge.oid)] == [("A", "from side")]
    with pytest.raises(GitCommandError):
        await repo.commit_files("no-such-commit")
    with pytest.raises(GitCommandError):
        await repo.commit_files(git(tmp_path, "rev-parse", "HEAD^{tree}").strip())
    for bad in ("", "--output=/tmp/x"):
        with pytest.raises(InvalidArgumentError):
            await repo.commit_files(bad)


def _index_state(root: Path) -> tuple[int, int, int]:
    st = os.stat(root / ".git" / "index")
    return st.st_ino, st.st_mtime_ns, st.st_size


async def test_reads_never_write_the_index(tmp_path: Path) -> None:
    names = [f"f{i}.txt" for i in range(5)]
    make_repo(tmp_path, files={name: f"{name}\n" for name in names})
    head = git(tmp_path, "rev-parse", "HEAD").strip()

    def stat_dirty() -> None:
        # same content, other stat data: git would refresh the index on its own initiative
        for i, name in enumerate(names):
            when = 1_000_000_000 + i
            os.utime(tmp_path / name, (when, when))

    stat_dirty()
    _write(tmp_path, "f0.txt", "really changed\n")
    repo = await _open(tmp_path)
    before = _index_state(tmp_path)
    await repo.status()
    await repo.status(paths=names)
    await repo.diff_stat()
    await repo.diff_stat(paths=names)
    await repo.diff_stat(cached=True)
    await repo.name_status()
    await repo.name_status(paths=["f1.txt"])
    await repo.log(5)
    await repo.commit_files(head)
    await repo.head()
    await repo.current_branch()
    await repo.show_file("HEAD", "f1.txt")
    assert _index_state(tmp_path) == before
    # the same diff run plainly does rewrite it: the reads above were put to the test
    git(tmp_path, "diff", "--numstat", "HEAD", env={"GIT_OPTIONAL_LOCKS": "0"})
    assert _index_state(tmp_path) != before
