"""Finding the git work tree that contains a path: :func:`open_repository`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from engine import (
    GitCommandError,
    GitNotFoundError,
    NotARepositoryError,
    PriorityLimiter,
    StaleLockError,
)

from ._process import DEFAULT_KILL_GRACE, GLOBAL_OPTIONS, git_env, run_git
from ._repository import GitRepository

__all__ = ["default_gate", "open_repository"]


def default_gate() -> PriorityLimiter:
    """A private limiter for a repository opened without one: twice the CPU count."""
    return PriorityLimiter((os.cpu_count() or 1) * 2)


def _existing_dir(path: str | os.PathLike[str]) -> Path:
    where = Path(path).absolute()
    if not where.is_dir():
        raise NotARepositoryError(where, "no such directory")
    return where


def _check_no_lock(git_dir: Path) -> None:
    lock = git_dir / "index.lock"
    if lock.exists():
        raise StaleLockError(lock)


async def open_repository(
    path: str | os.PathLike[str],
    *,
    gate: PriorityLimiter | None = None,
    env: Mapping[str, str] | None = None,
    git: str | None = None,
    kill_grace: float = DEFAULT_KILL_GRACE,
) -> GitRepository:
    """Find the git work tree containing ``path`` and return a repository object for it.

    Args:
        path: a directory inside the work tree.
        gate: the limiter git processes are admitted through (an engine's ``gate("git")``, say);
            default: a private one with twice the CPU count as capacity.
        env: extra environment for every git process (``GIT_AUTHOR_NAME``, ... for commits).
        git: the git executable (default: ``git`` found on ``PATH``).
        kill_grace: seconds between SIGTERM and SIGKILL for a cancelled git process.

    Returns:
        The repository. It holds no resources, so there is nothing to close.

    Raises:
        NotARepositoryError: ``path`` is not a directory inside a git work tree (a bare repository
            has no work tree and is refused too).
        GitNotFoundError: git cannot be run.
        StaleLockError: ``index.lock`` exists in the git directory; it is named, never deleted.

    Cancellation: the probing git process is killed and reaped; nothing is opened.
    """
    where = _existing_dir(path)
    executable = git or shutil.which("git")
    if executable is None:
        raise GitNotFoundError("git is not installed or not on PATH")
    the_gate = gate if gate is not None else default_gate()
    probe_env = git_env(env, read_only=True)

    async def rev_parse(option: str) -> Path:
        result = await run_git(
            executable,
            (*GLOBAL_OPTIONS, "rev-parse", option),
            cwd=where,
            env=probe_env,
            gate=the_gate,
            check=False,
            kill_grace=kill_grace,
        )
        stderr = result.stderr.decode("utf-8", "replace").strip()
        if result.returncode != 0:
            if "not a git repository" in stderr or "must be run in a work tree" in stderr:
                raise NotARepositoryError(where, stderr)
            raise GitCommandError(result.args, result.returncode, stderr)
        out = result.stdout[:-1] if result.stdout.endswith(b"\n") else result.stdout
        return Path(os.fsdecode(out))

    root = await rev_parse("--show-toplevel")
    git_dir = await rev_parse("--absolute-git-dir")
    _check_no_lock(git_dir)
    return GitRepository._create(
        root=root,
        git_dir=git_dir,
        git=executable,
        gate=the_gate,
        env=env,
        kill_grace=kill_grace,
    )
