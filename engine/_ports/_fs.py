"""The filesystem protocols: a scoped file store and a change watcher, with their typed records.

Nothing here does I/O. Watcher paths are root-relative, ``/``-separated strings (bytes that are not
valid UTF-8 are kept as surrogate escapes, :func:`os.fsdecode`), the same shape git uses for paths.
"""

from __future__ import annotations

import enum
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeAlias

from .._core._errors import ScribeError

__all__ = [
    "Change",
    "ChangeBatch",
    "ChangeKind",
    "FileAccessError",
    "FileInfo",
    "FileSystem",
    "FileSystemError",
    "FileTooLargeError",
    "NoSuchFileError",
    "NotRegularFileError",
    "PathEscapeError",
    "StrPath",
    "WatchLimitError",
    "Watcher",
    "WatcherError",
    "WatcherFactory",
]

StrPath: TypeAlias = "str | os.PathLike[str]"


# ------------------------------------------------------------------------------------------ errors


class FileSystemError(ScribeError):
    """Root of the errors a :class:`FileSystem` raises (besides :class:`OSError` from the OS)."""


class FileAccessError(FileSystemError, OSError):
    """The operating system refused a file operation (permission, not a directory, disk full, ...).

    It is an :class:`OSError` too: ``errno``, ``strerror`` and ``filename`` are set.
    """


class NoSuchFileError(FileAccessError, FileNotFoundError):
    """The path does not exist (also a :class:`FileNotFoundError`)."""


class PathEscapeError(FileSystemError, ValueError):
    """A path resolves outside the file system's root (``..``, an absolute path, or a symlink).

    Attributes:
        path: the path as given.
        root: the root it must stay inside.
    """

    def __init__(self, path: object, root: Path, detail: str = "resolves outside the root") -> None:
        super().__init__(f"path {str(path)!r} {detail} {root}")
        self.path = path
        self.root = root


class FileTooLargeError(FileSystemError):
    """A read was refused because the file is larger than the cap.

    Attributes:
        path: the file.
        size: its size in bytes (at least ``limit + 1``).
        limit: the cap in bytes.
    """

    def __init__(self, path: Path, size: int, limit: int) -> None:
        super().__init__(f"{path} is {size} bytes, more than the {limit}-byte read cap")
        self.path = path
        self.size = size
        self.limit = limit


class NotRegularFileError(FileSystemError):
    """A read (or an append) was refused because the path is not a regular file.

    Only regular files are opened for reading: a FIFO would block the reader until a writer comes,
    a device or a socket has no end or has side effects. A directory raises ``IsADirectoryError``
    (a :class:`FileAccessError`) instead.

    Attributes:
        path: the path.
        kind: what it is instead (``"FIFO"``, ``"socket"``, ``"character device"``,
            ``"block device"`` or ``"special file"``).
    """

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(f"{path} is not a regular file but a {kind}")
        self.path = path
        self.kind = kind


class WatcherError(ScribeError):
    """Root of the errors a :class:`Watcher` raises."""


class WatchLimitError(WatcherError):
    """The kernel refused another watch: the per-user watch limit is exhausted.

    Attributes:
        path: the directory that could not be watched.
        limit: the limit in force (``/proc/sys/fs/inotify/max_user_watches``), if known.
    """

    def __init__(self, path: Path, limit: int | None) -> None:
        shown = "unknown" if limit is None else str(limit)
        super().__init__(
            f"cannot watch {path}: the inotify watch limit (max_user_watches={shown}) is "
            "exhausted; raise fs.inotify.max_user_watches or ignore large directories"
        )
        self.path = path
        self.limit = limit


# -------------------------------------------------------------------------------------- filesystem


@dataclass(frozen=True, slots=True)
class FileInfo:
    """What :meth:`FileSystem.stat` reports about a path (symlinks not followed).

    Attributes:
        path: root-relative, ``/``-separated.
        size: bytes.
        mtime_ns: last modification, nanoseconds since the epoch.
        is_dir, is_file, is_symlink: the kind of entry.
    """

    path: str
    size: int
    mtime_ns: int
    is_dir: bool
    is_file: bool
    is_symlink: bool


class FileSystem(Protocol):
    """Files under one root directory; no path may reach outside it.

    Every path is resolved (symlinks followed) and must stay inside the root, else
    :class:`PathEscapeError`. Paths may be relative to the root or absolute inside it.
    """

    @property
    def root(self) -> Path:
        """The resolved root directory."""
        ...

    async def resolve(self, path: StrPath) -> Path:
        """The absolute, symlink-free path inside the root that ``path`` names."""
        ...

    async def read_bytes(self, path: StrPath, *, max_size: int | None = None) -> bytes:
        """The content of a regular file: :class:`FileTooLargeError` beyond the cap,
        :class:`NotRegularFileError` for a FIFO, socket or device (never opened for reading)."""
        ...

    async def read_text(
        self, path: StrPath, *, max_size: int | None = None, encoding: str = "utf-8"
    ) -> str:
        """The file's content decoded (errors as :meth:`read_bytes`)."""
        ...

    async def write_bytes(self, path: StrPath, data: bytes) -> None:
        """Replace the file's content atomically: readers and crashes see the old or the new."""
        ...

    async def write_text(self, path: StrPath, text: str, *, encoding: str = "utf-8") -> None:
        """:meth:`write_bytes` of the encoded text."""
        ...

    async def append(self, path: StrPath, data: bytes) -> None:
        """Append one record; records of concurrent appenders never interleave."""
        ...

    async def exists(self, path: StrPath) -> bool:
        """Whether the path exists (an escaping path raises rather than answering)."""
        ...

    async def stat(self, path: StrPath) -> FileInfo:
        """Size, modification time and kind of the entry."""
        ...

    async def list_dir(self, path: StrPath = ".") -> list[FileInfo]:
        """The entries of a directory, sorted by name."""
        ...

    async def make_dir(self, path: StrPath) -> None:
        """Create the directory and any missing parents (no error if it exists)."""
        ...

    async def remove(self, path: StrPath) -> None:
        """Remove a file (or an empty directory)."""
        ...


# ----------------------------------------------------------------------------------------- watcher


class ChangeKind(enum.StrEnum):
    """What happened to a path."""

    CREATED = "created"
    MODIFIED = "modified"
    DELETED = "deleted"
    MOVED = "moved"


@dataclass(frozen=True, slots=True)
class Change:
    """One change under a watched root.

    Attributes:
        kind: what happened.
        path: root-relative path (for a move, where it is now).
        old_path: for a move, where it was; else ``None``.
        is_dir: whether the path is a directory.
    """

    kind: ChangeKind
    path: str
    old_path: str | None = None
    is_dir: bool = False


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """Changes that arrived close together, in the order they happened.

    Attributes:
        changes: the changes (a path modified many times in a row appears once).
        rescan: ``True`` when the kernel dropped events (queue overflow, a reconcile scan found a
            difference, the root came back) and some of these changes were found by comparing a scan
            with the last known state. Consumers that cache derived data should refresh it.
    """

    changes: tuple[Change, ...] = ()
    rescan: bool = False

    @property
    def paths(self) -> frozenset[str]:
        """Every path the batch mentions (moves contribute both ends)."""
        found: set[str] = set()
        for change in self.changes:
            found.add(change.path)
            if change.old_path is not None:
                found.add(change.old_path)
        return frozenset(found)


class Watcher(Protocol):
    """An async iterator of :class:`ChangeBatch` for one directory tree.

    Iteration waits like any trio call: cancelling it loses nothing (changes not yet returned stay
    queued for the next call).
    """

    @property
    def root(self) -> Path:
        """The watched directory."""
        ...

    def __aiter__(self) -> AsyncIterator[ChangeBatch]:
        """The watcher itself."""
        ...

    async def __anext__(self) -> ChangeBatch:
        """The next batch of changes."""
        ...

    async def aclose(self) -> None:
        """Stop watching and release the kernel resources (idempotent)."""
        ...


class WatcherFactory(Protocol):
    """Opens a :class:`Watcher` on a directory; what the engine is given to watch work trees."""

    def __call__(
        self,
        root: StrPath,
        *,
        ignore: Iterable[str] = (),
        quiet: float = ...,
        cap: float = ...,
        reconcile_interval: float | None = ...,
    ) -> AbstractAsyncContextManager[Watcher]:
        """An async context manager that yields a watcher and closes it on exit."""
        ...
