"""A file system confined to one root directory, implementing :class:`engine.FileSystem`.

Blocking file operations run in worker threads, each hop admitted through an
:class:`engine.PriorityLimiter` under the calling session's priority.

- Confinement (:mod:`._confinement`): every path is resolved (symlinks followed) and must stay inside
  the root. After a file or directory is opened, the descriptor's real path (``/proc/self/fd``) is
  checked again, so a symlink swapped in between cannot redirect the operation outside.
- Atomic writes (:mod:`._atomic`): a temporary file in the target's directory is written and fsynced,
  renamed over the target, then the directory is fsynced. A crash at any point leaves the old content
  or the new; a cancellation before the rename leaves the old content and removes the temporary file.
- Appends: one ``O_APPEND`` write loop under an exclusive ``flock``, so records of concurrent
  appenders (threads or processes using this class) never interleave.
- Regular files only (:mod:`._regular`): reads and appends open nothing else, and never block
  opening it. A hop that changes nothing (read, stat, list, resolve) is abandoned when its caller is
  cancelled, so a deadline really ends it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar, final

import trio

from engine import (
    FileInfo,
    FileSystem,
    FileTooLargeError,
    PathEscapeError,
    PriorityLimiter,
    admit,
)
from engine._ports._fs import StrPath

from ._atomic import commit_temp, discard_temp, write_temp
from ._confinement import Confinement
from ._errors import os_errors
from ._regular import open_regular

__all__ = ["DEFAULT_MAX_READ_SIZE", "DEFAULT_MAX_THREADS", "ScopedFileSystem"]

#: Default read cap: 16 MiB.
DEFAULT_MAX_READ_SIZE: Final = 16 * 1024 * 1024
#: Default number of worker threads one file system runs at once.
DEFAULT_MAX_THREADS: Final = 4

_T = TypeVar("_T")
_READ_CHUNK = 1024 * 1024


@final
class ScopedFileSystem:
    """Files under ``root``; no path may reach outside it. Implements :class:`engine.FileSystem`.

    Args:
        root: an existing directory.
        gate: the limiter worker-thread hops are admitted through (an engine's ``gate("fs")``,
            say); default: a private one of capacity 8.
        max_read_size: the default read cap in bytes.
        max_threads: how many worker threads of this file system may run at once, a read
            abandoned by its cancelled caller included until it returns.

    Raises:
        NoSuchFileError: ``root`` does not exist.
        FileAccessError: ``root`` is not a directory.
    """

    def __init__(
        self,
        root: StrPath,
        *,
        gate: PriorityLimiter | None = None,
        max_read_size: int = DEFAULT_MAX_READ_SIZE,
        max_threads: int = DEFAULT_MAX_THREADS,
    ) -> None:
        with os_errors():
            real = os.path.realpath(os.fspath(root), strict=True)
            if not os.path.isdir(real):
                raise NotADirectoryError(errno.ENOTDIR, "root is not a directory", real)
        if max_read_size < 0:
            raise ValueError("max_read_size must be >= 0")
        if max_threads < 1:
            raise ValueError("max_threads must be >= 1")
        self._root = Path(real)
        self._root_str = real
        self._confinement = Confinement(real)
        self._gate = gate if gate is not None else PriorityLimiter(8)
        self._max_read_size = max_read_size
        self._threads = trio.CapacityLimiter(max_threads)

    def __repr__(self) -> str:
        return f"<ScopedFileSystem {self._root_str!r}>"

    @property
    def root(self) -> Path:
        """The resolved root directory."""
        return self._root

    @property
    def gate(self) -> PriorityLimiter:
        """The limiter worker-thread hops are admitted through."""
        return self._gate

    # -------------------------------------------------------------------- resolution (sync)

    def resolve_sync(self, path: StrPath) -> Path:
        """The absolute, symlink-free path inside the root that ``path`` names (blocking).

        Raises:
            PathEscapeError: it resolves outside the root.
        """
        return self._confinement.resolve(path)

    # ------------------------------------------------------------------ blocking operations

    def _read_sync(self, path: StrPath, limit: int) -> bytes:
        real = str(self.resolve_sync(path))
        fd = open_regular(real, os.O_RDONLY)
        with os_errors():
            try:
                self._confinement.check_fd(fd, path)
                st = os.fstat(fd)
                if st.st_size > limit:
                    raise FileTooLargeError(Path(real), st.st_size, limit)
                chunks: list[bytes] = []
                total = 0
                while True:
                    chunk = os.read(fd, min(_READ_CHUNK, limit + 1 - total) or 1)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    total += len(chunk)
                    if total > limit:  # it grew while we read, or st_size lies (procfs)
                        raise FileTooLargeError(Path(real), total, limit)
                return b"".join(chunks)
            finally:
                os.close(fd)

    def _append_sync(self, path: StrPath, data: bytes) -> None:
        real = str(self.resolve_sync(path))
        fd = open_regular(real, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        with os_errors():
            try:
                self._confinement.check_fd(fd, path)
                # O_APPEND puts each write() at the end; the lock keeps a record that takes
                # several write() calls (large records, short writes) in one piece.
                fcntl.flock(fd, fcntl.LOCK_EX)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)  # releases the lock

    def _stat_sync(self, path: StrPath) -> FileInfo:
        real = str(self.resolve_sync(path))
        with os_errors():
            return self._confinement.info(real, os.lstat(real))

    def _exists_sync(self, path: StrPath) -> bool:
        return os.path.lexists(self.resolve_sync(path))

    def _list_sync(self, path: StrPath) -> list[FileInfo]:
        real = str(self.resolve_sync(path))
        with os_errors():
            with os.scandir(real) as it:
                entries = [(e.path, e.stat(follow_symlinks=False)) for e in it]
        return sorted((self._confinement.info(p, st) for p, st in entries), key=lambda i: i.path)

    def _make_dir_sync(self, path: StrPath) -> None:
        real = str(self.resolve_sync(path))
        with os_errors():
            os.makedirs(real, exist_ok=True)
        if not self._confinement.inside(
            os.path.realpath(real)
        ):  # a component was swapped meanwhile
            raise PathEscapeError(path, self._root, "was redirected outside")

    def _remove_sync(self, path: StrPath) -> None:
        dir_fd, name = self._confinement.open_parent(path)
        try:
            with os_errors():
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    os.rmdir(name, dir_fd=dir_fd)
                else:
                    os.unlink(name, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)

    # ---------------------------------------------------------------------- async interface

    async def _hop(self, fn: Callable[..., _T], *args: object) -> _T:
        async with admit(self._gate):
            return await trio.to_thread.run_sync(fn, *args)

    async def _query(self, fn: Callable[..., _T], *args: object) -> _T:
        """A hop that changes nothing (a read, a stat): abandoned when the caller is cancelled.

        The caller leaves at once and gives its slot of the shared gate back, so a read stuck in the
        kernel (a hung network mount) never starves the other file systems sharing the gate. The
        thread itself, until it returns, keeps one of this file system's ``max_threads`` tokens: a
        caller waits for a free one before it takes a slot of the gate.
        """
        if self._threads.available_tokens == 0:
            async with self._threads:  # wait (cancellably) until a stuck thread has returned
                pass
        async with admit(self._gate):
            return await trio.to_thread.run_sync(
                fn, *args, abandon_on_cancel=True, limiter=self._threads
            )

    async def resolve(self, path: StrPath) -> Path:
        """The absolute, symlink-free path inside the root that ``path`` names.

        Raises:
            PathEscapeError: it resolves outside the root (``..``, absolute, or via a symlink).

        Cancellation: takes effect at once; a worker thread already resolving is left to finish
        and its answer dropped.
        """
        return await self._query(self.resolve_sync, path)

    async def read_bytes(self, path: StrPath, *, max_size: int | None = None) -> bytes:
        """The file's content.

        Args:
            path: relative to the root (or absolute inside it).
            max_size: the cap in bytes (default: the file system's ``max_read_size``).

        Raises:
            PathEscapeError: the path leaves the root.
            FileTooLargeError: the file is larger than the cap.
            NotRegularFileError: it is a FIFO, a socket or a device (it is never opened for reading,
                so the read cannot block on it). IsADirectoryError: it is a directory.
            NoSuchFileError: it does not exist. FileAccessError: another OS refusal.

        Cancellation: takes effect at once, even while the worker thread reads: the thread is left
        to finish (it closes the file) and its answer dropped.
        """
        limit = self._max_read_size if max_size is None else max_size
        return await self._query(self._read_sync, path, limit)

    async def read_text(
        self, path: StrPath, *, max_size: int | None = None, encoding: str = "utf-8"
    ) -> str:
        """The file's content decoded (see :meth:`read_bytes` for errors and cancellation)."""
        return (await self.read_bytes(path, max_size=max_size)).decode(encoding)

    async def write_bytes(self, path: StrPath, data: bytes) -> None:
        """Replace the file's content atomically (temporary file, fsync, rename, fsync dir).

        The parent directory must exist. A symlink inside the root is followed and its target
        replaced; the file's permission bits are kept.

        Raises:
            PathEscapeError: the path leaves the root.
            NoSuchFileError: the parent directory does not exist. FileAccessError: another refusal.

        Cancellation: if cancelled before the rename, the temporary file is removed and the old
        content stays (``Cancelled`` propagates). Once the rename has started the write completes
        and returns normally; the cancellation takes effect at the next checkpoint. Readers and a
        crash at any point see the old content or the new, never a mix.
        """
        async with admit(self._gate):
            dir_fd, temp, name = await trio.to_thread.run_sync(
                write_temp, self._confinement, path, data
            )
            try:
                await trio.lowlevel.checkpoint_if_cancelled()
            except BaseException:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(discard_temp, dir_fd, temp)
                raise
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(commit_temp, dir_fd, temp, name)

    async def write_text(self, path: StrPath, text: str, *, encoding: str = "utf-8") -> None:
        """:meth:`write_bytes` of the encoded text (same errors and cancellation)."""
        await self.write_bytes(path, text.encode(encoding))

    async def append(self, path: StrPath, data: bytes) -> None:
        """Append one record (the file is created if missing).

        Records of concurrent appenders using this class, in threads or processes, never
        interleave: the write happens under an exclusive ``flock`` with ``O_APPEND``.

        Raises:
            PathEscapeError: the path leaves the root. NotRegularFileError: it is a FIFO, a socket
                or a device (refused without blocking). FileAccessError: an OS refusal.

        Cancellation: while waiting for admission nothing is written; once the worker thread
        runs, the whole record is appended and the cancellation takes effect afterwards.
        """
        await self._hop(self._append_sync, path, data)

    async def exists(self, path: StrPath) -> bool:
        """Whether the path exists (an escaping path raises :class:`PathEscapeError`).

        Cancellation: takes effect at once (a worker thread already running is left to finish).
        """
        return await self._query(self._exists_sync, path)

    async def stat(self, path: StrPath) -> FileInfo:
        """Size, modification time and kind of what the (resolved) path names.

        Raises:
            PathEscapeError, NoSuchFileError, FileAccessError.

        Cancellation: takes effect at once (a worker thread already running is left to finish).
        """
        return await self._query(self._stat_sync, path)

    async def list_dir(self, path: StrPath = ".") -> list[FileInfo]:
        """The entries of a directory sorted by path; symlinks are reported, not followed.

        Cancellation: takes effect at once (a worker thread already running is left to finish).
        """
        return await self._query(self._list_sync, path)

    async def make_dir(self, path: StrPath) -> None:
        """Create the directory and its missing parents (no error if it exists)."""
        await self._hop(self._make_dir_sync, path)

    async def remove(self, path: StrPath) -> None:
        """Remove a file, a symlink (not its target) or an empty directory.

        Raises:
            PathEscapeError: the path leaves the root or names the root.
            NoSuchFileError, FileAccessError (a non-empty directory, for instance).
        """
        await self._hop(self._remove_sync, path)


if TYPE_CHECKING:

    def _implements_protocol(fs: ScopedFileSystem) -> FileSystem:
        return fs
