"""The watcher honours git's ignore rules, on real repositories with real inotify: ``.gitignore`` files at
every level (negations, directory-only and anchored patterns), the exclude file, the global excludes
file; ignored directories get no watch; tracked files inside them are still seen; rule edits apply."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from git_repos import git, make_repo
from test_watcher import gather, has, paths

from adapters import open_watcher
from adapters.fs._gitignore import GitIgnores, read_ignore_file
from engine import Change, ChangeKind

END = "zz-end.txt"  # written last: every change before it has been read when it is


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The watcher's own git queries see no configuration of this machine."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))


def _write(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole at once, as editors do: a temporary file (here one level up, where it is
    not reported) renamed over it."""
    temporary = path.parent.parent / (path.name + ".new")
    temporary.write_text(text)
    os.replace(temporary, path)


def _tree_paths(changes: list[Change]) -> set[str]:
    return {p for p in paths(changes) if not p.startswith(".git/") and p != END}


async def test_an_ignored_virtualenv_takes_no_watches(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    files = {f"pkg{i:02}/mod.py": "x" for i in range(50)}
    make_repo(repo, files={**files, ".gitignore": ".venv/\n"})
    for i in range(5000):
        os.makedirs(repo / ".venv" / "lib" / f"site{i // 100:02}" / f"p{i:04}")
    async with open_watcher(repo) as w:
        watches = w.statistics().watches
        # The root, 50 package directories, .git, refs, refs/heads and .git/info.
        assert watches <= 50 + 6, watches
        _write(repo / ".venv" / "lib" / "site00" / "p0000" / "new.py")
        _write(repo / "pkg07" / "mod.py", "y")
        _write(repo / END)
        _, changes = await gather(w, has(END))
        assert _tree_paths(changes) == {"pkg07/mod.py"}
        assert w.statistics().watches == watches


async def test_nested_gitignore_negation_directory_only_and_anchored(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    _write(repo / ".gitignore", "*.log\n!keep.log\n/anchored\nbuild/\n# a comment\n")
    _write(repo / "sub" / ".gitignore", "local.txt\n!debug.log\n")
    async with open_watcher(repo) as w:
        for name in (
            "a.log",  # ignored
            "keep.log",  # re-included by the negation
            "sub/debug.log",  # ignored above, re-included by the deeper file
            "sub/deeper/x.log",  # ignored (the deeper file's negation names debug.log only)
            "sub/local.txt",  # ignored by the deeper file
            "local.txt",  # the deeper file does not reach above its directory
            "anchored",  # ignored: anchored at the root
            "x/anchored",  # seen: the anchored pattern names the root's entry only
            "build/out.o",  # ignored: the directory is
            "x/build/out.o",  # ignored: a directory-only pattern matches at any level
            "y/build",  # seen: a file named like the directory-only pattern
        ):
            _write(repo / name)
        _write(repo / END)
        _, changes = await gather(w, has(END))
        files = {c.path for c in changes if not c.is_dir} - {END}
        assert files == {"keep.log", "sub/debug.log", "local.txt", "x/anchored", "y/build"}
        assert "build" not in paths(changes) and "x/build" not in paths(changes)


async def test_the_exclude_file_also_when_it_is_edited(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    exclude = repo / ".git" / "info" / "exclude"
    _write(exclude, "secret/\n")
    async with open_watcher(repo) as w:
        _write(repo / "secret" / "key.txt")
        _write(repo / "plain.txt")
        _write(repo / END)
        _, changes = await gather(w, has(END))
        assert _tree_paths(changes) == {"plain.txt"}
        _replace(exclude, "secret/\n*.tmpx\n")
        (repo / END).unlink()
        _, changes = await gather(w, has(END, kind=ChangeKind.DELETED))
        _write(repo / "scratch.tmpx")
        _write(repo / "kept.txt")
        _write(repo / END)
        _, changes = await gather(w, has(END))
        assert _tree_paths(changes) == {"kept.txt"}


@pytest.mark.parametrize("how", ["core.excludesFile", "XDG_CONFIG_HOME"])
async def test_the_global_excludes_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    repo = make_repo(tmp_path / "repo")
    if how == "core.excludesFile":
        ignore = tmp_path / "my-global-ignore"
        config = tmp_path / "gitconfig"
        config.write_text(f"[core]\n\texcludesFile = {ignore}\n")
        monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    else:
        ignore = tmp_path / "xdg" / "git" / "ignore"
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    _write(ignore, "*.bak\n.idea/\n")
    async with open_watcher(repo) as w:
        _write(repo / "notes.bak")
        _write(repo / ".idea" / "workspace.xml")
        _write(repo / "notes.md")
        _write(repo / END)
        _, changes = await gather(w, has(END))
        assert _tree_paths(changes) == {"notes.md"}


async def test_a_tracked_file_inside_an_ignored_directory_is_seen(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    make_repo(repo, files={"vendor/lib/patched.py": "1", "vendor/lib/other.py": "1"})
    _write(repo / ".gitignore", "vendor/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore vendor")
    for i in range(20):
        os.makedirs(repo / "vendor" / f"untracked{i}")
    async with open_watcher(repo) as w:
        assert w.statistics().watches <= 8  # root, vendor, vendor/lib, .git and its few
        _write(repo / "vendor" / "lib" / "patched.py", "2")
        _write(repo / "vendor" / "lib" / "untracked.py")
        _write(repo / "vendor" / "untracked0" / "x.py")
        _write(repo / END)
        _, changes = await gather(w, has(END))
        assert _tree_paths(changes) == {"vendor/lib/patched.py"}
        assert Change(ChangeKind.MODIFIED, "vendor/lib/patched.py") in changes
        # Force-adding a file makes it tracked: the index change brings it in.
        git(repo, "add", "-f", "vendor/untracked0/x.py")
        _, changes = await gather(w, has(".git/index"))
        _write(repo / "vendor" / "untracked0" / "x.py", "changed")
        _, changes = await gather(w, has("vendor/untracked0/x.py"))
        assert Change(ChangeKind.MODIFIED, "vendor/untracked0/x.py") in changes


async def test_editing_gitignore_shows_and_hides_directories(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    _write(repo / ".gitignore", "generated/\n")
    for i in range(30):
        _write(repo / "generated" / f"d{i}" / "old.txt")
    async with open_watcher(repo) as w:
        before = w.statistics().watches
        _replace(repo / ".gitignore", "# nothing ignored now\n")
        _, changes = await gather(w, has(".gitignore"))
        # What was there all along is a baseline, not a creation.
        assert _tree_paths(changes) == {".gitignore"}
        assert w.statistics().watches == before + 31
        _write(repo / "generated" / "d3" / "old.txt", "changed")
        _write(repo / "generated" / "d4" / "new.txt")
        _, changes = await gather(w, has("generated/d3/old.txt", "generated/d4/new.txt"))
        assert Change(ChangeKind.MODIFIED, "generated/d3/old.txt") in changes
        assert Change(ChangeKind.CREATED, "generated/d4/new.txt") in changes
        _replace(repo / ".gitignore", "generated/\n")
        _, changes = await gather(w, has(".gitignore"))
        assert w.statistics().watches == before
        _write(repo / "generated" / "d5" / "again.txt")
        _write(repo / END)
        _, changes = await gather(w, has(END))
        assert _tree_paths(changes) == set()


def test_the_rules_decide_as_git_check_ignore_does(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    rules = {
        ".gitignore": "*.o\n!important.o\nbuild/\n/top-only\ndocs/**/draft*\n*.tmp\n\\#hash\nsp\\ ace\n"
        "*.txt\n!docs/keep.txt\ndocs/*.md\n!*.md\nlogs/*\n!logs/keep/\n",
        "a/.gitignore": "!*.tmp\nlocal/\n*.o\n",
        "a/b/.gitignore": "!local/\nz*\n!zz\n",
        ".git/info/exclude": "*.secret\n!a/plain.secret\n",
    }
    for name, text in rules.items():
        _write(repo / name, text)
    global_file = tmp_path / "global-ignore"
    _write(global_file, "*.swp\n.cache/\n")
    names = [
        "x.o", "important.o", "build/f", "a/build/f", "top-only", "a/top-only", "docs/v/draft1",
        "docs/draft2", "a.tmp", "a/b.tmp", "a/b/c.tmp", "#hash", "sp ace", "a/x.o",
        "a/important.o", "a/local/f", "a/b/local/f", "a/b/zed", "a/b/zz", "a/zed", "k.secret",
        "a/plain.secret", "e.swp", "a/.cache/f", "plain.txt", "a/b/c/d/e.txt", "docs/keep.txt",
        "docs/other.txt", "docs/a.md", "logs/x", "logs/keep/y", "logs/drop/z",
    ]  # fmt: skip
    for name in names:
        _write(repo / name)
    matcher = GitIgnores(
        str(repo),
        base=[
            read_ignore_file(str(repo / ".git/info/exclude"), follow=True),
            read_ignore_file(str(global_file), follow=True),
        ],
    )
    candidates: list[tuple[str, bool]] = []
    for top, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if d != ".git"]
        rel_top = os.path.relpath(top, repo).replace(os.sep, "/")
        prefix = "" if rel_top == "." else rel_top + "/"
        candidates += [(prefix + d, True) for d in dirs] + [(prefix + f, False) for f in files]
    stdin = "".join(f"{rel}\0" for rel, _ in candidates)
    config = tmp_path / "gitconfig"
    config.write_text(f"[core]\n\texcludesFile = {global_file}\n")
    out = subprocess.run(
        ["git", "check-ignore", "--stdin", "-z"],
        cwd=repo,
        input=stdin.encode(),
        capture_output=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": str(config)},
        check=False,
    ).stdout.decode()
    by_git = {p for p in out.split("\0") if p}
    by_us = {rel for rel, is_dir in candidates if not matcher.visible(rel, is_dir)}
    assert by_us == by_git
    assert {"x.o", "build", "a/local", "k.secret", "e.swp"} <= by_us  # the test tests something


async def test_a_fifo_named_gitignore_is_not_read(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "sub").mkdir()
    os.mkfifo(repo / "sub" / ".gitignore")  # opening it for reading would block
    async with open_watcher(repo) as w:
        _write(repo / "sub" / "a.txt")
        _, changes = await gather(w, has("sub/a.txt"))
        assert Change(ChangeKind.CREATED, "sub/a.txt") in changes


async def test_a_linked_worktree_uses_the_common_exclude_file(tmp_path: Path) -> None:
    main = make_repo(tmp_path / "main", files={"vendor/keep.py": "1", "src/app.py": "1"})
    _write(main / ".gitignore", "vendor/\n")
    git(main, "add", ".gitignore")
    git(main, "commit", "-qm", "ignore vendor")
    _write(main / ".git" / "info" / "exclude", "*.local\n")
    linked = tmp_path / "linked"
    git(main, "worktree", "add", "-q", str(linked), "-b", "other")
    async with open_watcher(linked) as w:
        _write(linked / "vendor" / "keep.py", "2")
        _write(linked / "vendor" / "new.py")
        _write(linked / "src" / "settings.local")
        _write(linked / "src" / "app.py", "2")
        _write(linked / END)
        _, changes = await gather(w, has(END))
        assert {c.path for c in changes if not c.is_dir} - {END} == {
            "vendor/keep.py",
            "src/app.py",
        }


async def test_a_git_that_hangs_and_ignores_sigterm_is_killed_at_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.fs import _ignore_sources

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "git"
    fake.write_text("#!/bin/sh\ntrap '' TERM\nsleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(_ignore_sources, "_GIT_DEADLINE", 0.2)
    # No answer within the deadline is "no information" (not a work tree), with no process left behind
    # and no five-second SIGTERM wait (trio warns then, and warnings are errors here).
    assert await _ignore_sources.IgnoreSources.discover(str(tmp_path)) is None
