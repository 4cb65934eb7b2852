"""Running one git process under trio: admitted by the priority gate, reaped on every exit path.

Each git process starts in a new session (so it leads its own process group). If the caller is
cancelled, the whole group gets SIGTERM (git removes its lock files on SIGTERM; hooks die with it),
then SIGKILL after a short grace; the leader is reaped under a shield before the cancellation
propagates, and any member of the group still alive afterwards is killed too.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from engine import GitCommandError, PriorityLimiter, admit

from .._errors import map_exceptions
from ._errors import git_errors

__all__ = [
    "DEFAULT_KILL_GRACE",
    "GLOBAL_OPTIONS",
    "GitResult",
    "git_env",
    "live_group_members",
    "run_git",
]

#: Options every git command of ours starts with: no colour, and no path quoting (``-z`` output is
#: raw anyway).
GLOBAL_OPTIONS = ("-c", "color.ui=never", "-c", "core.quotePath=false")

#: How long a cancelled git process group gets between SIGTERM and SIGKILL. git removes its own lock
#: files on SIGTERM; on a CPU-starved machine (load 9 on 2 cores) half a second was seen to be too little
#: and the SIGKILL left a stale index.lock, so the last resort waits 2 s.
DEFAULT_KILL_GRACE = 2.0

# Variables that would point git at another repository, index or work tree than the one we open.
_REPOSITORY_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)


@dataclass(frozen=True, slots=True)
class GitResult:
    """A finished git process: exit code and captured output."""

    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes


def git_env(extra: Mapping[str, str] | None = None, *, read_only: bool) -> dict[str, str]:
    """The environment a git process runs with.

    Args:
        extra: variables added last (identity for commits in tests, for instance).
        read_only: add ``GIT_OPTIONAL_LOCKS=0`` so the command never takes the index lock to
            refresh stat data; a read killed at any point then leaves no lock behind.

    Returns:
        A new mapping for ``env=``.
    """
    env = {k: v for k, v in os.environ.items() if k not in _REPOSITORY_VARIABLES}
    env["LC_ALL"] = "C"
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_EDITOR"] = ":"
    env["GIT_PAGER"] = "cat"
    if read_only:
        env["GIT_OPTIONAL_LOCKS"] = "0"
    else:
        env.pop("GIT_OPTIONAL_LOCKS", None)
    if extra:
        env.update(extra)
    return env


def _group_states(pgid: int) -> list[tuple[int, str]]:
    """(pid, state letter) of every process whose process group is ``pgid``, from /proc."""
    found: list[tuple[int, str]] = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ... ; comm may contain spaces and parentheses
        fields = stat[stat.rfind(b")") + 2 :].split(b" ", 3)
        if len(fields) >= 3 and int(fields[2]) == pgid:
            found.append((int(name), fields[0].decode("ascii", "replace")))
    return found


def live_group_members(pgid: int) -> list[int]:
    """Pids still running (not zombies) in process group ``pgid``."""
    return [pid for pid, state in _group_states(pgid) if state not in ("Z", "X")]


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _DeliverCancel:
    """``deliver_cancel`` for :func:`trio.run_process`: SIGTERM the group, SIGKILL after ``grace``."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.pgid: int | None = None

    async def __call__(self, process: trio.Process) -> None:
        self.pgid = process.pid
        _signal_group(process.pid, signal.SIGTERM)
        await trio.sleep(self.grace)
        _signal_group(process.pid, signal.SIGKILL)


async def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = trio.current_time() + timeout
    for _ in range(10_000):
        if not live_group_members(pgid):
            return True
        if trio.current_time() >= deadline:
            break
        await trio.sleep(0.005)
    return False


async def _sweep_group(pgid: int, grace: float) -> None:
    """After the leader is reaped, make sure nothing of its group survives (hooks, children)."""
    if not live_group_members(pgid):
        return
    _signal_group(pgid, signal.SIGTERM)
    if await _wait_group_gone(pgid, grace):
        return
    _signal_group(pgid, signal.SIGKILL)
    await _wait_group_gone(pgid, 1.0)


async def run_git(
    git: str,
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    gate: PriorityLimiter,
    stdin: bytes | None = None,
    check: bool = True,
    kill_grace: float = DEFAULT_KILL_GRACE,
) -> GitResult:
    """Run ``git args...`` once it is admitted through ``gate``, and capture its output.

    Args:
        git: the git executable.
        args: arguments after the executable.
        cwd: the directory to run in.
        env: the full environment (see :func:`git_env`).
        gate: the limiter every git process is admitted through, under the current session's
            priority.
        stdin: bytes to feed on standard input (else standard input is ``/dev/null``).
        check: raise :class:`GitCommandError` on a non-zero exit.
        kill_grace: seconds between SIGTERM and SIGKILL when cancelled.

    Returns:
        The exit code and output.

    Raises:
        GitNotFoundError: the executable cannot be started.
        GitCommandError: git exited non-zero and ``check`` is true.

    Cancellation: waiting for admission takes nothing. Once running, the process group is sent
    SIGTERM, then SIGKILL after ``kill_grace``; the process is reaped and its group swept (under a
    shield, time-limited) before the cancellation propagates, so no child outlives the call.
    """
    argv = (git, *args)
    deliver = _DeliverCancel(kill_grace)
    async with admit(gate):
        try:
            with map_exceptions(git_errors(git)):
                completed = await trio.run_process(
                    argv,
                    cwd=cwd,
                    env=dict(env),
                    stdin=subprocess.DEVNULL if stdin is None else stdin,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                    start_new_session=True,
                    deliver_cancel=deliver,
                )
        except BaseException:
            if deliver.pgid is not None:
                with trio.CancelScope(shield=True):
                    with trio.move_on_after(kill_grace + 1.0):
                        await _sweep_group(deliver.pgid, kill_grace)
            raise
    result = GitResult(argv, completed.returncode, completed.stdout, completed.stderr)
    if check and result.returncode != 0:
        raise GitCommandError(argv, result.returncode, result.stderr.decode("utf-8", "replace"))
    return result
