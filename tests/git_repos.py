"""Real git repositories in temporary directories, for the git adapter's tests and benchmark."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

#: Identity and isolation from the machine's git configuration, for every git process of a test.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    """Run git synchronously in ``cwd`` with the test identity; return its standard output."""
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV, **(env or {})},
        capture_output=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {args} failed: {result.stderr.decode()}")
    return result.stdout.decode("utf-8", "surrogateescape")


def make_repo(path: Path, *, files: dict[str, str] | None = None) -> Path:
    """``git init`` a repository on branch ``main`` and commit ``files`` if given."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    if files:
        for name, content in files.items():
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        git(path, "add", "--all")
        git(path, "commit", "-q", "-m", "initial")
    return path


def children_of(pid: int) -> set[int]:
    """Pids (zombies included) whose parent is ``pid``."""
    found: set[int] = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split(b" ", 2)
        if int(fields[1]) == pid:
            found.add(int(name))
    return found


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    state = stat[stat.rfind(b")") + 2 :][:1]
    return state not in (b"Z", b"X")


def real(path: Path) -> Path:
    """``path`` with symlinks resolved (what the adapters report)."""
    return path.resolve()
