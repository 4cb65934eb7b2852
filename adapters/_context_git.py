"""Path-limited git reads for the context provider's incremental refresh.

After a small change the provider asks git about the changed paths only (``git status -- PATHS``,
``git diff --numstat HEAD -- PATHS``) and merges the answer into its cached status and diff stat, so the
cost no longer grows with the size of the tree. The commands run exactly as the git adapter runs its
reads (same options, ``GIT_OPTIONAL_LOCKS=0``, same gate, same cancellation) and its parsers read the
output. Concurrent identical requests share one git process (the status and the diff refresh both
read the diff stat of the changed paths).
"""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar, final

import trio

from engine._vcs import DiffStat, GitNotFoundError, Status

from ._git import _DIFF_OPTIONS, _GLOBAL_OPTIONS, GitRepository
from ._git_parse import parse_diff_numstat, parse_status
from ._git_process import git_env, run_git

__all__ = ["PathScopedGit", "path_scoped_reads"]


@final
class PathScopedGit:
    """Path-limited reads of one repository (implements ``engine.ScopedGitReads``).

    Args:
        repo: the repository (its root and gate are used).
    """

    def __init__(self, repo: GitRepository) -> None:
        git = shutil.which("git")
        if git is None:
            raise GitNotFoundError("git is not installed or not on PATH")
        self._git = git
        self._repo = repo
        self._env = git_env(None, read_only=True)
        self._status: dict[tuple[str, ...], _Flight[Status]] = {}
        self._diffs: dict[tuple[str, ...], _Flight[DiffStat]] = {}
        #: git processes started (a test and a benchmark count them).
        self.processes = 0

    def __repr__(self) -> str:
        return f"<PathScopedGit {str(self._repo.root)!r}>"

    async def _read(self, args: Sequence[str]) -> bytes:
        self.processes += 1
        result = await run_git(
            self._git,
            (*_GLOBAL_OPTIONS, *args),
            cwd=self._repo.root,
            env=self._env,
            gate=self._repo.gate,
        )
        return result.stdout

    async def status_paths(self, paths: Sequence[str]) -> Status:
        """``git status`` limited to ``paths`` (the branch headers are the whole repository's).

        Cancellation: the git process is killed and reaped; no lock file is left.
        """

        async def run() -> Status:
            return parse_status(await self._read(_status_args(paths)))

        return await _shared(self._status, ("", *paths), run)

    async def diff_stat_paths(self, paths: Sequence[str], ref: str = "HEAD") -> DiffStat:
        """Per-file line counts of the work tree against ``ref``, limited to ``paths``.

        Cancellation: the git process is killed and reaped.
        """

        async def run() -> DiffStat:
            return parse_diff_numstat(await self._read(_diff_args(paths, ref)))

        return await _shared(self._diffs, (ref, *paths), run)


_T = TypeVar("_T")


@final
class _Flight(Generic[_T]):
    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: _T | None = None


async def _shared(
    flights: dict[tuple[str, ...], _Flight[_T]],
    key: tuple[str, ...],
    run: Callable[[], Awaitable[_T]],
) -> _T:
    """``await run()``, or the result of an identical call already running (a failed or cancelled
    one leaves the joiners to run their own)."""
    while (flight := flights.get(key)) is not None:
        await flight.done.wait()
        if flight.result is not None:
            return flight.result
    flight = flights[key] = _Flight()
    try:
        flight.result = await run()
        return flight.result
    finally:
        del flights[key]
        flight.done.set()


def _status_args(paths: Sequence[str]) -> list[str]:
    return [
        "status",
        "--porcelain=v2",
        "--branch",
        "-z",
        "--untracked-files=all",
        "--renames",
        "--ignored=no",
        "--",
        *(f":(literal){p}" for p in paths),
    ]


def _diff_args(paths: Sequence[str], ref: str) -> list[str]:
    return [
        "diff",
        "--numstat",
        "-z",
        "-M",
        *_DIFF_OPTIONS,
        "--end-of-options",
        ref,
        "--",
        *(f":(literal){p}" for p in paths),
    ]


def path_scoped_reads(git: object) -> PathScopedGit | None:
    """Path-limited reads for a repository opened by the git adapter (None for anything else)."""
    return PathScopedGit(git) if isinstance(git, GitRepository) else None
