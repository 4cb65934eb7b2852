"""The git contract: status, log, diffs, commit files, file at a ref, staging and committing.

One test body drives a real repository and the fake through the same steps; both must then tell
the same story. Renames are left out: the fake does not detect them.
"""

from __future__ import annotations

import pytest
from contracts.backends import GitBackend

import engine


async def _commit_all(g: engine.Git, message: str) -> str:
    await g.add(all=True)
    return await g.commit(message)


async def test_an_unborn_branch(repo: GitBackend) -> None:
    g = await repo.open_git()
    repo.write("x", "x\n")
    status = await g.status()
    assert (status.branch.oid, status.branch.head, status.branch.upstream) == (None, "main", None)
    assert status.untracked == ("x",) and not status.clean
    assert await g.head() is None and await g.current_branch() == "main"
    assert await g.log() == ()
    with pytest.raises(engine.GitCommandError):
        await g.diff_stat()


async def test_status_of_staged_unstaged_added_deleted_and_untracked(repo: GitBackend) -> None:
    g = await repo.open_git()
    for path, content in {
        "m.txt": "1\n",
        "d.txt": "d\n",
        "both.txt": "b\n",
        "gone.txt": "g\n",
    }.items():
        repo.write(path, content)
    first = await _commit_all(g, "initial")
    status = await g.status()
    assert status.clean and status.branch.oid == first and status.branch.head == "main"
    assert status.branch.ahead is None and not status.branch.detached

    repo.write("m.txt", "2\n")  # unstaged modification
    repo.write("both.txt", "b2\n")
    await g.add(["both.txt"])
    repo.write("both.txt", "b3\n")  # staged and unstaged
    repo.write("new.txt", "n\n")
    await g.add(["new.txt"])  # added
    repo.delete("d.txt")
    await g.add(["d.txt"])  # staged deletion
    repo.delete("gone.txt")  # unstaged deletion
    repo.write("dir/untracked.txt", "u\n")
    status = await g.status()
    entries = {e.path: e for e in status.entries}
    shapes = {
        p: (e.index, e.worktree) for p, e in entries.items() if isinstance(e, engine.OrdinaryEntry)
    }
    assert shapes == {
        "both.txt": ("M", "M"),
        "d.txt": ("D", "."),
        "gone.txt": (".", "D"),
        "m.txt": (".", "M"),
        "new.txt": ("A", "."),
    }
    assert status.untracked == ("dir/untracked.txt",)
    assert [e.path for e in status.changed] == ["both.txt", "d.txt", "gone.txt", "m.txt", "new.txt"]
    new = entries["new.txt"]
    assert isinstance(new, engine.OrdinaryEntry)
    assert (new.mode_head, new.mode_index, new.oid_head) == ("000000", "100644", "0" * 40)
    m = entries["m.txt"]
    assert isinstance(m, engine.OrdinaryEntry) and m.submodule == "N..." and len(m.oid_head) == 40
    assert m.oid_head == m.oid_index

    only = await g.status(paths=["m.txt", "dir"])
    assert [e.path for e in only.entries] == ["m.txt", "dir/untracked.txt"]
    assert only.branch == status.branch
    assert (await g.status(paths=[])).entries == ()
    with pytest.raises(engine.InvalidArgumentError):
        await g.status(paths=["../out"])


async def test_log_and_commit_files(repo: GitBackend) -> None:
    g = await repo.open_git()
    repo.write("a", "0\n")
    oids = [await _commit_all(g, "initial")]
    for i in range(1, 5):
        repo.write("a" if i % 2 else "b", f"{i}\n")
        oids.append(await _commit_all(g, f"subject {i}\n\nbody {i}\nline two"))
    assert await g.head() == oids[-1]
    log = await g.log(3)
    assert [c.subject for c in log] == ["subject 4", "subject 3", "subject 2"]
    assert [c.oid for c in log] == oids[:1:-1][:3]
    assert log[0].body == "body 4\nline two"
    assert log[0].parents == (log[1].oid,)
    assert log[0].author_name == "Test Author" and log[0].author_email == "author@example.com"
    assert log[0].author_time.tzinfo is not None
    root = (await g.log(100))[-1]
    assert root.subject == "initial" and root.parents == () and root.body == ""
    assert len(await g.log(100)) == 5
    assert [c.subject for c in await g.log(10, paths=["b"])] == ["subject 4", "subject 2"]
    assert [c.oid for c in await g.log(10, ref=f"{oids[2]}..{oids[4]}")] == [oids[4], oids[3]]
    assert [c.oid for c in await g.log(10, ref=oids[1])] == [oids[1], oids[0]]
    assert [c.oid for c in await g.log(1, ref="HEAD~2")] == [oids[2]]
    assert await g.log(0) == ()
    with pytest.raises(engine.GitCommandError):
        await g.log(5, ref="no-such-branch")

    assert [(e.status, e.path) for e in await g.commit_files(oids[0])] == [("A", "a")]
    assert [(e.status, e.path) for e in await g.commit_files(oids[2])] == [("A", "b")]
    assert [(e.status, e.path) for e in await g.commit_files(oids[3])] == [("M", "a")]
    with pytest.raises(engine.GitCommandError):
        await g.commit_files("0" * 40)
    with pytest.raises(engine.InvalidArgumentError):
        await g.commit_files("-x")


async def test_diff_stat_and_name_status(repo: GitBackend) -> None:
    g = await repo.open_git()
    for path, content in {"mod.txt": "a\nb\nc\n", "del.txt": "x\n", "keep.txt": "k\n"}.items():
        repo.write(path, content)
    first = await _commit_all(g, "initial")
    repo.write("mod.txt", "a\nB\nc\nd\n")
    repo.delete("del.txt")
    repo.write("bin.dat", b"\0\1\2\3")
    repo.write("added.txt", "1\n2\n")
    repo.write("untracked.txt", "not part of a diff\n")
    await g.add(["bin.dat", "added.txt"])
    stat = await g.diff_stat()
    files = {f.path: f for f in stat.files}
    assert set(files) == {"mod.txt", "del.txt", "bin.dat", "added.txt"}
    assert (files["mod.txt"].added, files["mod.txt"].deleted) == (2, 1)
    assert (files["del.txt"].added, files["del.txt"].deleted) == (0, 1)
    assert files["bin.dat"].binary and files["bin.dat"].added is None
    assert files["added.txt"].added == 2
    assert (stat.files_changed, stat.insertions, stat.deletions) == (4, 4, 2)
    names = {e.path: e.status for e in await g.name_status()}
    assert names == {"mod.txt": "M", "del.txt": "D", "bin.dat": "A", "added.txt": "A"}
    assert {e.path for e in await g.name_status(cached=True)} == {"bin.dat", "added.txt"}
    assert {f.path for f in (await g.diff_stat(cached=True)).files} == {"bin.dat", "added.txt"}
    assert [f.path for f in (await g.diff_stat(paths=["mod.txt"])).files] == ["mod.txt"]
    assert (await g.diff_stat(paths=[])).files == ()
    assert await g.name_status(paths=[]) == ()

    await g.add(all=True)
    await g.commit("second")
    assert (await g.diff_stat()).files == ()
    assert {f.path for f in (await g.diff_stat(first)).files} == set(files) | {"untracked.txt"}
    with pytest.raises(engine.GitCommandError):
        await g.diff_stat("no-such-ref")


async def test_show_file_add_and_commit(repo: GitBackend) -> None:
    g = await repo.open_git()
    repo.write("f.txt", "v1\n")
    await _commit_all(g, "v1")
    repo.write("f.txt", "v2\n")
    with pytest.raises(engine.GitCommandError):
        await g.commit("nothing staged")
    second = await _commit_all(g, "two\n\nwith a body")
    assert await g.show_file("HEAD", "f.txt") == b"v2\n"
    assert await g.show_file("HEAD~1", "f.txt") == b"v1\n"
    with pytest.raises(engine.GitCommandError) as info:
        await g.show_file("HEAD", "missing.txt")
    assert info.value.exit_code == 128 and "missing.txt" in info.value.stderr
    assert (await g.status()).clean
    (latest,) = await g.log(1)
    assert (latest.oid, latest.subject, latest.body) == (second, "two", "with a body")
    empty = await g.commit("empty", allow_empty=True)
    assert empty != second and (await g.log(1))[0].parents == (second,)
    with pytest.raises(engine.GitCommandError):
        await g.add(["no-such-file"])


async def test_branches_and_a_detached_head(repo: GitBackend) -> None:
    g = await repo.open_git()
    repo.write("a", "1\n")
    base = await _commit_all(g, "base")
    repo.switch("feat/B-7", create=True)
    assert await g.current_branch() == "feat/B-7" and await g.head() == base
    repo.write("b", "2\n")
    tip = await _commit_all(g, "on the branch")
    repo.switch("main")
    status = await g.status()
    assert (status.branch.head, status.branch.oid) == ("main", base)
    assert status.clean  # the branch's file left the work tree
    assert [c.oid for c in await g.log(5, ref="feat/B-7")] == [tip, base]
    assert [c.oid for c in await g.log(5, ref="main..feat/B-7")] == [tip]


async def test_ignore_files_hide_untracked_paths(repo: GitBackend) -> None:
    g = await repo.open_git()
    repo.write(".gitignore", "*.log\n")
    repo.write("kept.txt", "k\n")
    repo.write("debug.log", "noise\n")
    repo.write("logs/run.log", "noise\n")
    repo.write(".scribe/.gitignore", "*\n")
    repo.write(".scribe/B-1.md", "# worklog\n")
    status = await g.status()
    assert status.untracked == (".gitignore", "kept.txt")
    assert set((await g.status(ignored=True)).ignored) == {
        "debug.log",
        "logs/run.log",
        ".scribe/.gitignore",
        ".scribe/B-1.md",
    }
    await g.add(all=True)
    await g.commit("only what is not ignored")
    assert [e.path for e in await g.commit_files("HEAD")] == [".gitignore", "kept.txt"]
    assert (await g.status()).clean
