"""Git calls cancelled at random points: no child process left, no index.lock, a usable repository."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import open_repository

ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
OPERATIONS = ["status", "log", "diff_stat", "name_status", "show_file", "head", "add", "commit"]


def _children() -> set[int]:
    """Pids (zombies included) whose parent is this process."""
    me = os.getpid()
    found: set[int] = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat[stat.rfind(b")") + 2 :].split(b" ", 2)[1]) == me:
                found.add(int(name))
    return found


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cancel-repo")

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, env={**os.environ, **ENV}, check=True)

    git("init", "-q", "-b", "main")
    for i in range(300):
        (root / f"file{i:03}.txt").write_text(f"line {i}\n" * 20)
    git("add", "--all")
    git("commit", "-q", "-m", "initial")
    hook = root / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nsleep 0.01\n")  # commits spend time in a hook child
    hook.chmod(0o755)
    return root


@settings(max_examples=60, deadline=None)
@given(
    operation=st.sampled_from(OPERATIONS),
    delay=st.floats(min_value=0.0, max_value=0.03),
    edits=st.integers(min_value=0, max_value=40),
)
async def test_cancelled_git_call_leaves_nothing_behind(
    repo_dir: Path, operation: str, delay: float, edits: int
) -> None:
    repo = await open_repository(repo_dir, env=ENV)
    for i in range(edits):
        (repo_dir / f"file{i:03}.txt").write_text(f"edit {delay} {i}\n")
    if operation == "commit":
        await repo.add(all=True)
    before_head = await repo.head()
    before = _children()
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "status": repo.status,
        "log": lambda: repo.log(20),
        "diff_stat": repo.diff_stat,
        "name_status": repo.name_status,
        "show_file": lambda: repo.show_file("HEAD", "file001.txt"),
        "head": repo.head,
        "add": lambda: repo.add(all=True),
        "commit": lambda: repo.commit(f"commit {delay}", allow_empty=True),
    }
    with trio.move_on_after(delay) as scope:
        await calls[operation]()
    # Whatever happened, the process (and any hook) is gone and nothing is locked.
    assert _children() <= before
    assert not (repo_dir / ".git" / "index.lock").exists()
    reopened = await open_repository(repo_dir, env=ENV)  # raises StaleLockError on a lock
    head = await reopened.head()
    if operation == "commit":
        (latest,) = await reopened.log(1)
        if scope.cancelled_caught:  # the commit happened entirely or not at all
            assert head == before_head or latest.parents == (before_head,)
        else:
            assert latest.parents == (before_head,)
    else:
        assert head == before_head
    await reopened.status()
