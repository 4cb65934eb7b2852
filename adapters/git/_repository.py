"""The :class:`engine.Git` protocol over the git command line, run through trio.

Reads (status, log, diffs, HEAD, branch, file at a ref) run in parallel with
``GIT_OPTIONAL_LOCKS=0``, ``diff.autoRefreshIndex=false`` and ``LC_ALL=C``, so they never write the
index (a watcher of ``.git/index`` would otherwise see our own reads); writes (add, commit) are serialized per repository by a
:class:`trio.Lock` shared by every :class:`GitRepository` of the same git directory in one trio run.
Every git process is admitted through a :class:`engine.PriorityLimiter` under the calling session's
priority; see :mod:`adapters.git._process` for what cancellation does to it. :func:`open_repository`
(:mod:`._discovery`) finds the work tree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, final

import trio

from engine import (
    DiffStat,
    Git,
    GitCommandError,
    InvalidArgumentError,
    LogEntry,
    NameStatusEntry,
    NoPublicConstructor,
    PriorityLimiter,
    Status,
)

from ._abandoned_lock import drop_abandoned_lock, lock_identity
from ._pathspec import NOTHING, pathspecs
from ._porcelain import LOG_FORMAT, parse_diff_numstat, parse_log, parse_name_status, parse_status
from ._process import GLOBAL_OPTIONS, GitResult, git_env, run_git

__all__ = ["GitRepository"]

# No external diff or text conversion: a diff must not run programs from the repository's config.
_DIFF_OPTIONS = ("--no-ext-diff", "--no-textconv", "--no-color")
# Reads never write the index. GIT_OPTIONAL_LOCKS=0 keeps ``git status`` from refreshing it, but
# ``git diff`` still rewrites it when it found files whose stat data changed and content did not.
_READ_OPTIONS = ("-c", "diff.autoRefreshIndex=false")

_write_locks: trio.lowlevel.RunVar[dict[Path, trio.Lock]] = trio.lowlevel.RunVar("scribe_git_locks")


def _write_lock(git_dir: Path) -> trio.Lock:
    try:
        locks = _write_locks.get()
    except LookupError:
        locks = {}
        _write_locks.set(locks)
    lock = locks.get(git_dir)
    if lock is None:
        lock = locks[git_dir] = trio.Lock()
    return lock


@final
class GitRepository(metaclass=NoPublicConstructor):
    """A git work tree, implementing :class:`engine.Git`. Get one from :func:`open_repository`.

    Holds no open resources: there is nothing to close.
    """

    def __init__(
        self,
        *,
        root: Path,
        git_dir: Path,
        git: str,
        gate: PriorityLimiter,
        env: Mapping[str, str] | None,
        kill_grace: float,
    ) -> None:
        self._root = root
        self._git_dir = git_dir
        self._git = git
        self._gate = gate
        self._read_env = git_env(env, read_only=True)
        self._write_env = git_env(env, read_only=False)
        self._kill_grace = kill_grace
        self._lock = _write_lock(git_dir)
        self._processes = 0

    def __repr__(self) -> str:
        return f"<GitRepository {str(self._root)!r}>"

    @property
    def root(self) -> Path:
        """The work tree's top-level directory."""
        return self._root

    @property
    def git_dir(self) -> Path:
        """The repository's git directory."""
        return self._git_dir

    @property
    def gate(self) -> PriorityLimiter:
        """The limiter every git process of this repository is admitted through."""
        return self._gate

    @property
    def processes(self) -> int:
        """How many git processes this object started so far (reads and writes)."""
        return self._processes

    async def _read(self, *args: str, check: bool = True) -> GitResult:
        self._processes += 1
        return await run_git(
            self._git,
            (*GLOBAL_OPTIONS, *_READ_OPTIONS, *args),
            cwd=self._root,
            env=self._read_env,
            gate=self._gate,
            check=check,
            kill_grace=self._kill_grace,
        )

    async def _write(self, *args: str, stdin: bytes | None = None) -> GitResult:
        # Called under self._lock: no other write of ours runs on this repository meanwhile.
        self._processes += 1
        lock = self._git_dir / "index.lock"
        before = lock_identity(lock)
        try:
            return await run_git(
                self._git,
                (*GLOBAL_OPTIONS, *args),
                cwd=self._root,
                env=self._write_env,
                gate=self._gate,
                stdin=stdin,
                kill_grace=self._kill_grace,
            )
        except BaseException:
            # run_git has reaped the process group: a lock it left cannot be in use by it.
            drop_abandoned_lock(lock, before)
            raise

    async def status(self, *, ignored: bool = False, paths: Sequence[str] | None = None) -> Status:
        """``git status`` parsed: branch, upstream, ahead/behind and every entry.

        Args:
            ignored: also list paths matched by ignore rules.
            paths: list only entries under these root-relative paths (taken literally: no glob, any
                character; a directory stands for everything under it; empty: no entries). The
                branch headers are the whole repository's either way. None: the whole tree.

        Returns:
            The parsed status; untracked files are listed one by one, renames are detected.

        Raises:
            InvalidArgumentError: a path is absolute, empty or leaves the tree.

        Cancellation: the git process is killed and reaped; no lock file is left.
        """
        specs = pathspecs(paths)
        args = ["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all", "--renames"]
        args.append("--ignored=matching" if ignored else "--ignored=no")
        if specs:
            args += ["--", *specs]
        return parse_status((await self._read(*args)).stdout)

    async def log(
        self,
        count: int = 20,
        *,
        since: datetime | None = None,
        paths: Sequence[str] = (),
        ref: str = "HEAD",
    ) -> tuple[LogEntry, ...]:
        """The newest ``count`` commits reachable from ``ref``, newest first.

        Args:
            count: at most this many commits.
            since: only commits newer than this (a naive datetime is taken as local time).
            paths: only commits touching these root-relative paths (taken literally).
            ref: where to start; before the first commit ``HEAD`` gives an empty tuple.

        Returns:
            The commits.

        Raises:
            GitCommandError: ``ref`` does not exist.
            InvalidArgumentError: a path is absolute, empty or leaves the tree.

        Cancellation: the git process is killed and reaped.
        """
        if count < 0:
            raise ValueError("count must be >= 0")
        specs = pathspecs(paths) if paths else []
        args = [
            "log",
            "-z",
            f"--format={LOG_FORMAT}",
            f"--max-count={count}",
            "--no-show-signature",
        ]
        if since is not None:
            args.append(f"--since={since.astimezone().isoformat()}")
        args += ["--end-of-options", ref, "--", *specs]
        result = await self._read(*args, check=False)
        if result.returncode != 0:
            stderr = result.stderr.decode("utf-8", "replace")
            if ref == "HEAD" and await self.head() is None:
                return ()  # unborn branch: no commits yet
            raise GitCommandError(result.args, result.returncode, stderr)
        return parse_log(result.stdout)

    async def diff_stat(
        self, ref: str = "HEAD", *, cached: bool = False, paths: Sequence[str] | None = None
    ) -> DiffStat:
        """Per-file added/deleted line counts against ``ref`` (``--numstat``, renames detected).

        Args:
            ref: the commit to compare with.
            cached: compare the index instead of the work tree.
            paths: only these root-relative paths (taken literally; a directory stands for
                everything under it; empty: nothing). None: the whole tree. A rename is detected
                only when both of its paths are among them.

        Returns:
            The diff stat (untracked files are not part of a diff).

        Raises:
            GitCommandError: ``ref`` does not exist (including ``HEAD`` before the first commit).
            InvalidArgumentError: a path is absolute, empty or leaves the tree.

        Cancellation: the git process is killed and reaped.
        """
        specs = pathspecs(paths)
        if specs == [NOTHING]:
            await trio.lowlevel.checkpoint()
            return DiffStat()
        args = ["diff", "--numstat", "-z", "-M", *_DIFF_OPTIONS]
        if cached:
            args.append("--cached")
        args += ["--end-of-options", ref, "--", *specs]
        return parse_diff_numstat((await self._read(*args)).stdout)

    async def name_status(
        self, ref: str = "HEAD", *, cached: bool = False, paths: Sequence[str] | None = None
    ) -> tuple[NameStatusEntry, ...]:
        """Which files differ from ``ref`` and how (``--name-status``, renames detected).

        Args:
            ref: the commit to compare with.
            cached: compare the index instead of the work tree.
            paths: only these root-relative paths, as for :meth:`diff_stat`.

        Returns:
            One entry per file.

        Raises:
            GitCommandError: ``ref`` does not exist.
            InvalidArgumentError: a path is absolute, empty or leaves the tree.

        Cancellation: the git process is killed and reaped.
        """
        specs = pathspecs(paths)
        if specs == [NOTHING]:
            await trio.lowlevel.checkpoint()
            return ()
        args = ["diff", "--name-status", "-z", "-M", *_DIFF_OPTIONS]
        if cached:
            args.append("--cached")
        args += ["--end-of-options", ref, "--", *specs]
        return parse_name_status((await self._read(*args)).stdout)

    async def commit_files(self, oid: str) -> tuple[NameStatusEntry, ...]:
        """The files commit ``oid`` changed and how (``git diff-tree``, renames detected).

        A commit is compared with its first parent, so a merge shows what it brought into the
        branch; a root commit is compared with the empty tree (every file added).

        Args:
            oid: the commit (an id, or any name of one: a branch, ``HEAD~2``).

        Returns:
            One entry per file.

        Raises:
            GitCommandError: ``oid`` names no commit.
            InvalidArgumentError: ``oid`` is empty or starts with ``-``.

        Cancellation: the git process is killed and reaped.
        """
        if not isinstance(oid, str) or not oid or oid.startswith("-"):
            raise InvalidArgumentError(f"invalid commit {oid!r}")
        result = await self._read(
            "diff-tree",
            "-r",
            "-z",
            "-M",
            "--name-status",
            "--no-commit-id",
            "--root",
            "--diff-merges=first-parent",
            *_DIFF_OPTIONS,
            "--end-of-options",
            f"{oid}^{{commit}}",
            "--",
        )
        return parse_name_status(result.stdout)

    async def head(self) -> str | None:
        """The commit HEAD points at, or ``None`` before the first commit.

        Cancellation: the git process is killed and reaped.
        """
        result = await self._read("rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
        if result.returncode != 0:
            if result.returncode == 1 and not result.stdout:
                return None
            raise GitCommandError(
                result.args, result.returncode, result.stderr.decode("utf-8", "replace")
            )
        return result.stdout.decode("ascii").strip()

    async def current_branch(self) -> str | None:
        """The checked-out branch's short name (even before its first commit), ``None`` if detached.

        Cancellation: the git process is killed and reaped.
        """
        result = await self._read("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        if result.returncode == 1:
            return None
        if result.returncode != 0:
            raise GitCommandError(
                result.args, result.returncode, result.stderr.decode("utf-8", "replace")
            )
        return os.fsdecode(result.stdout.rstrip(b"\n"))

    async def show_file(self, ref: str, path: str) -> bytes:
        """The content of ``path`` (root-relative, ``/``-separated) in ``ref``.

        Raises:
            GitCommandError: no such ref or no such path in it.

        Cancellation: the git process is killed and reaped.
        """
        if ":" in ref:
            raise ValueError(f"ref must not contain ':': {ref!r}")
        return (await self._read("cat-file", "blob", f"{ref}:{path}")).stdout

    async def add(self, paths: Sequence[str] = (), *, all: bool = False) -> None:
        """Stage ``paths`` (root-relative), or every change in the work tree with ``all``.

        Raises:
            GitCommandError: git refused (a path outside the tree, the index is locked, ...).

        Cancellation: the process group gets SIGTERM (git drops its ``index.lock``), then SIGKILL
        after the grace; it is reaped before the cancellation propagates, and an ``index.lock`` it
        was killed too early to drop is removed. The index is either updated or left as it was.
        """
        if not paths and not all:
            return
        args = ["add", "--all"] if all else ["add"]
        async with self._lock:
            await self._write(*args, "--", *paths)

    async def commit(
        self, message: str, *, allow_empty: bool = False, no_verify: bool = False
    ) -> str:
        """Commit the index and return the new commit id (hooks run unless ``no_verify``).

        Raises:
            GitCommandError: nothing to commit, a hook refused, no identity configured, ...

        Cancellation: the process group (git and any hook it runs) gets SIGTERM, then SIGKILL
        after the grace, and is reaped before the cancellation propagates; an ``index.lock`` it
        was killed too early to drop is removed.
        """
        args = ["commit", "--quiet", "--file=-", "--cleanup=strip"]
        if allow_empty:
            args.append("--allow-empty")
        if no_verify:
            args.append("--no-verify")
        async with self._lock:
            await self._write(*args, stdin=message.encode("utf-8"))
            oid = await self.head()
        assert oid is not None
        return oid


if TYPE_CHECKING:

    def _implements_protocol(repo: GitRepository) -> Git:
        return repo
