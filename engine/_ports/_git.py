"""The version-control protocol: what the engine asks of a repository.

Nothing here does I/O. The records it returns are in :mod:`._git_status` and :mod:`._git_history`,
its errors in :mod:`._git_errors`. Paths are repository-root relative, ``/``-separated strings; bytes
that are not valid UTF-8 are kept as surrogate escapes (:func:`os.fsdecode`), so any path round-trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ._git_history import DiffStat, LogEntry, NameStatusEntry
from ._git_status import Status

__all__ = ["Git"]


class Git(Protocol):
    """A git work tree the engine reads (and, for tools and tests, writes).

    Implementations admit each git process through the engine's priority gate under the calling
    session's priority. Every call is cancellable: when it returns or raises, the process it started
    is gone, and a cancelled read leaves no lock file behind.

    Reads never write to the repository, not even the index refresh git does on its own initiative
    after a ``status`` or ``diff``: a watcher of ``.git/index`` sees only what others staged.
    """

    @property
    def root(self) -> Path:
        """The work tree's top-level directory."""
        ...

    @property
    def git_dir(self) -> Path:
        """The repository's git directory (``.git``, or elsewhere for a linked work tree)."""
        ...

    async def status(self, *, ignored: bool = False, paths: Sequence[str] | None = None) -> Status:
        """The branch headers and every changed, untracked (and optionally ignored) path.

        ``paths`` limits the entries to those paths (root-relative, taken literally; a directory
        stands for everything under it; empty: no entries); the branch headers are always the whole
        repository's. None: the whole tree.
        """
        ...

    async def log(
        self,
        count: int = 20,
        *,
        since: datetime | None = None,
        paths: Sequence[str] = (),
        ref: str = "HEAD",
    ) -> tuple[LogEntry, ...]:
        """The newest ``count`` commits reachable from ``ref``, newest first (none if unborn).

        ``paths``: only commits touching those paths (taken literally; empty: every commit).
        """
        ...

    async def diff_stat(
        self, ref: str = "HEAD", *, cached: bool = False, paths: Sequence[str] | None = None
    ) -> DiffStat:
        """Per-file line counts of the work tree (or the index, if ``cached``) against ``ref``.

        ``paths`` limits the diff to those paths, as for :meth:`status`.
        """
        ...

    async def name_status(
        self, ref: str = "HEAD", *, cached: bool = False, paths: Sequence[str] | None = None
    ) -> tuple[NameStatusEntry, ...]:
        """Which files differ from ``ref`` and how (added, modified, deleted, renamed, ...).

        ``paths`` limits the diff to those paths, as for :meth:`status`.
        """
        ...

    async def commit_files(self, oid: str) -> tuple[NameStatusEntry, ...]:
        """The files commit ``oid`` changed and how.

        A commit is compared with its first parent (for a merge: what it brought into the branch),
        a root commit with the empty tree (every file added).
        """
        ...

    async def head(self) -> str | None:
        """The commit HEAD points at, or ``None`` before the first commit."""
        ...

    async def current_branch(self) -> str | None:
        """The checked-out branch's short name, or ``None`` when HEAD is detached."""
        ...

    async def show_file(self, ref: str, path: str) -> bytes:
        """The content of ``path`` (root-relative) as it is in ``ref``."""
        ...

    async def add(self, paths: Sequence[str] = (), *, all: bool = False) -> None:
        """Stage ``paths`` (or every change, with ``all``)."""
        ...

    async def commit(
        self, message: str, *, allow_empty: bool = False, no_verify: bool = False
    ) -> str:
        """Commit what is staged and return the new commit id."""
        ...
