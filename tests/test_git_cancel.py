"""Cancelling git calls: the process and its hooks are gone, nothing is left locked."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import trio
from git_repos import GIT_ENV, children_of, git, is_running, make_repo

from adapters import GitRepository, open_repository


def _read_if_present(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


async def _wait_for_file(path: Path) -> str:
    for _ in range(2000):
        if text := _read_if_present(path):
            return text
        await trio.sleep(0.005)
    raise AssertionError(f"{path} never appeared")


def _install_slow_hook(repo: Path, *, ignore_term: bool) -> Path:
    pids = repo / ".git" / "hook-pids"
    trap = "trap '' TERM\n" if ignore_term else ""
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\n{trap}sleep 30 &\necho $$ $! > '{pids}'\nwait\n")
    hook.chmod(0o755)
    return pids


async def _cancel_commit_during_hook(tmp_path: Path, *, ignore_term: bool) -> None:
    make_repo(tmp_path, files={"a": "1"})
    pids_file = _install_slow_hook(tmp_path, ignore_term=ignore_term)
    repo = await open_repository(tmp_path, env=GIT_ENV)
    head = await repo.head()
    (tmp_path / "a").write_text("2")
    await repo.add(["a"])
    before = children_of(os.getpid())
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(repo.commit, "never lands")
            hook_pids = [int(p) for p in (await _wait_for_file(pids_file)).split()]
            assert all(is_running(pid) for pid in hook_pids)
            scope.cancel()
    assert scope.cancelled_caught
    # The call has returned: git, the hook's shell and its sleep are all gone.
    assert not any(is_running(pid) for pid in hook_pids)
    assert children_of(os.getpid()) <= before
    assert not (tmp_path / ".git" / "index.lock").exists()
    assert await repo.head() == head
    assert "M  a" in git(tmp_path, "status", "--short")  # the staged change is still staged


async def test_cancelled_commit_kills_its_hook(tmp_path: Path) -> None:
    await _cancel_commit_during_hook(tmp_path, ignore_term=False)


async def test_cancelled_commit_kills_a_hook_that_ignores_sigterm(tmp_path: Path) -> None:
    await _cancel_commit_during_hook(tmp_path, ignore_term=True)


async def test_cancelled_read_leaves_no_process_and_no_lock(tmp_path: Path) -> None:
    make_repo(tmp_path, files={f"f{i}": str(i) for i in range(50)})
    for i in range(50):
        (tmp_path / f"f{i}").write_text(f"changed {i}")
    repo = await open_repository(tmp_path, env=GIT_ENV)
    before = children_of(os.getpid())
    for delay in (0.0, 0.0005, 0.001, 0.002, 0.004):
        with trio.move_on_after(delay):
            await repo.status()
        assert children_of(os.getpid()) <= before
        assert not (tmp_path / ".git" / "index.lock").exists()
    assert len((await repo.status()).entries) == 50


def _git_killed_holding_the_lock(tmp_path: Path) -> Path:
    """A git for which ``add`` takes index.lock and then waits, dying on SIGTERM with the lock kept.

    Real git has that window between opening its first lock file and installing the handler that
    drops it; this wrapper holds it open long enough to cancel inside it.
    """
    script = tmp_path / "git-that-dies-locked"
    script.write_text(
        "#!/bin/sh\n"
        'for a; do if [ "$a" = add ]; then\n'
        '  : > "$(git rev-parse --absolute-git-dir)/index.lock"\n'
        "  exec sleep 30\n"
        "fi; done\n"
        'exec git "$@"\n'
    )
    script.chmod(0o755)
    return script


async def _repo_whose_add_dies_locked(tmp_path: Path) -> tuple[GitRepository, Path]:
    work = tmp_path / "work"
    make_repo(work, files={"a": "1"})
    wrapper = _git_killed_holding_the_lock(tmp_path)
    repo = await open_repository(work, env=GIT_ENV, git=str(wrapper))
    return repo, work / ".git" / "index.lock"


async def test_a_lock_left_by_a_cancelled_write_is_dropped(tmp_path: Path) -> None:
    repo, lock = await _repo_whose_add_dies_locked(tmp_path)
    with trio.move_on_after(0.5) as scope:
        await repo.add(all=True)
    assert scope.cancelled_caught
    assert not lock.exists()
    await open_repository(repo.root, env=GIT_ENV)  # no StaleLockError


async def test_a_lock_that_was_there_before_or_is_held_is_kept(tmp_path: Path) -> None:
    repo, lock = await _repo_whose_add_dies_locked(tmp_path)
    lock.write_text("")  # someone else's, from before the write
    with trio.move_on_after(0.5):
        await repo.add(all=True)
    assert lock.exists()  # the wrapper truncated it, but it is the same file: not ours to drop
    lock.unlink()
    # A lock appearing while our write runs but held open by a live process is kept too.
    with trio.move_on_after(0.5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(repo.add, all=True))
            await trio.sleep(0.2)
            held = lock.open("a")
    try:
        assert lock.exists()
    finally:
        held.close()
