"""A file system confined to one root directory, implementing :class:`engine.FileSystem`.

Blocking file operations run in worker threads, each hop admitted through an
:class:`engine.PriorityLimiter` under the calling session's priority.

- Confinement: every path is resolved (symlinks followed) and must stay inside the root. After a
  file or directory is opened, the descriptor's real path (``/proc/self/fd``) is checked again, so a
  symlink swapped in between cannot redirect the operation outside.
- Atomic writes: a temporary file in the target's directory is written and fsynced, renamed over
  the target, then the directory is fsynced. A crash at any point leaves the old content or the
  new; a cancellation before the rename leaves the old content and removes the temporary file.
- Appends: one ``O_APPEND`` write loop under an exclusive ``flock``, so records of concurrent
  appenders (threads or processes using this class) never interleave.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar, final

import trio

from engine import (
    FileAccessError,
    FileInfo,
    FileSystem,
    FileSystemError,
    FileTooLargeError,
    NoSuchFileError,
    PathEscapeError,
    PriorityLimiter,
    admit,
)
from engine._ports._fs import StrPath

__all__ = ["DEFAULT_MAX_READ_SIZE", "TEMP_SUFFIX", "ScopedFileSystem"]

#: Default read cap: 16 MiB.
DEFAULT_MAX_READ_SIZE: Final = 16 * 1024 * 1024
#: Suffix of the temporary files atomic writes create (a watcher may ignore ``*.scribe-tmp``).
TEMP_SUFFIX: Final = ".scribe-tmp"

_T = TypeVar("_T")
_READ_CHUNK = 1024 * 1024


@contextmanager
def _os_errors() -> Iterator[None]:
    """Translate OS errors into the typed ones (still ``OSError`` subclasses)."""
    try:
        yield
    except FileSystemError:
        raise
    except FileNotFoundError as exc:
        raise NoSuchFileError(exc.errno, exc.strerror, exc.filename) from None
    except OSError as exc:
        raise FileAccessError(exc.errno, exc.strerror, exc.filename) from None


@final
class ScopedFileSystem:
    """Files under ``root``; no path may reach outside it. Implements :class:`engine.FileSystem`.

    Args:
        root: an existing directory.
        gate: the limiter worker-thread hops are admitted through (an engine's ``gate("fs")``,
            say); default: a private one of capacity 8.
        max_read_size: the default read cap in bytes.

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
    ) -> None:
        with _os_errors():
            real = os.path.realpath(os.fspath(root), strict=True)
            if not os.path.isdir(real):
                raise NotADirectoryError(errno.ENOTDIR, "root is not a directory", real)
        if max_read_size < 0:
            raise ValueError("max_read_size must be >= 0")
        self._root = Path(real)
        self._root_str = real
        self._gate = gate if gate is not None else PriorityLimiter(8)
        self._max_read_size = max_read_size

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

    def _inside(self, real: str) -> bool:
        return real == self._root_str or real.startswith(self._root_str.rstrip("/") + "/")

    def _joined(self, path: StrPath) -> str:
        raw = os.fspath(path)
        if not isinstance(raw, str):
            raise TypeError(f"paths are str or os.PathLike[str], not {type(raw).__name__}")
        if "\0" in raw:
            raise PathEscapeError(path, self._root, "contains a NUL byte; refused under")
        return os.path.join(self._root_str, raw)

    def resolve_sync(self, path: StrPath) -> Path:
        """The absolute, symlink-free path inside the root that ``path`` names (blocking).

        Raises:
            PathEscapeError: it resolves outside the root.
        """
        real = os.path.realpath(self._joined(path))
        if not self._inside(real):
            raise PathEscapeError(path, self._root)
        return Path(real)

    def _split_parent(self, path: StrPath) -> tuple[str, str]:
        """(resolved parent directory, final name) for operations on the entry itself."""
        joined = self._joined(path)
        head, name = os.path.split(joined.rstrip("/") or "/")
        if name in ("", ".", ".."):
            real = os.path.realpath(joined)
            if not self._inside(real):
                raise PathEscapeError(path, self._root)
            head, name = os.path.split(real)
            if real == self._root_str:
                raise PathEscapeError(path, self._root, "names the root itself; refused for")
        parent = os.path.realpath(head)
        if not self._inside(parent):
            raise PathEscapeError(path, self._root)
        return parent, name

    def _check_fd(self, fd: int, path: StrPath) -> None:
        """Refuse a descriptor whose real location is outside the root (a racing symlink swap)."""
        try:
            where = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return  # no /proc: the path check above is all there is
        if not self._inside(where):
            raise PathEscapeError(path, self._root, "was redirected outside")

    def _relative(self, real: str) -> str:
        rel = os.path.relpath(real, self._root_str)
        return "" if rel == "." else rel.replace(os.sep, "/")

    def _info(self, real: str, st: os.stat_result) -> FileInfo:
        return FileInfo(
            path=self._relative(real),
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            is_dir=stat.S_ISDIR(st.st_mode),
            is_file=stat.S_ISREG(st.st_mode),
            is_symlink=stat.S_ISLNK(st.st_mode),
        )

    # ------------------------------------------------------------------ blocking operations

    def _read_sync(self, path: StrPath, limit: int) -> bytes:
        real = str(self.resolve_sync(path))
        with _os_errors():
            fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                self._check_fd(fd, path)
                st = os.fstat(fd)
                if stat.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(errno.EISDIR, "is a directory", real)
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

    def _open_parent(self, path: StrPath) -> tuple[int, str]:
        parent, name = self._split_parent(path)
        with _os_errors():
            dir_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self._check_fd(dir_fd, path)
        except BaseException:
            os.close(dir_fd)
            raise
        return dir_fd, name

    def _write_temp(self, path: StrPath, data: bytes) -> tuple[int, str, str]:
        """Write ``data`` to a fresh temporary file next to the target; fsync it.

        Returns:
            (directory fd, temporary name, final name). The caller renames or removes it.
        """
        # Follow a final symlink that stays inside the root: the target file is replaced.
        real = str(self.resolve_sync(path))
        dir_fd, name = self._open_parent(real)
        try:
            with _os_errors():
                mode = 0o666
                try:
                    existing = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    if stat.S_ISDIR(existing.st_mode):
                        raise IsADirectoryError(errno.EISDIR, "is a directory", real)
                    mode = stat.S_IMODE(existing.st_mode)
                except FileNotFoundError:
                    existing = None
                temp = f".{name[:200]}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
                fd = os.open(temp, flags, mode, dir_fd=dir_fd)
                try:
                    if existing is not None:
                        os.fchmod(fd, mode)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                except BaseException:
                    os.close(fd)
                    os.unlink(temp, dir_fd=dir_fd)
                    raise
                os.close(fd)
        except BaseException:
            os.close(dir_fd)
            raise
        return dir_fd, temp, name

    @staticmethod
    def _commit_temp(dir_fd: int, temp: str, name: str) -> None:
        try:
            with _os_errors():
                try:
                    os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                except BaseException:
                    os.unlink(temp, dir_fd=dir_fd)
                    raise
                os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @staticmethod
    def _discard_temp(dir_fd: int, temp: str) -> None:
        try:
            os.unlink(temp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        finally:
            os.close(dir_fd)

    def _append_sync(self, path: StrPath, data: bytes) -> None:
        real = str(self.resolve_sync(path))
        with _os_errors():
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
            fd = os.open(real, flags, 0o666)
            try:
                self._check_fd(fd, path)
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
        with _os_errors():
            return self._info(real, os.lstat(real))

    def _exists_sync(self, path: StrPath) -> bool:
        return os.path.lexists(self.resolve_sync(path))

    def _list_sync(self, path: StrPath) -> list[FileInfo]:
        real = str(self.resolve_sync(path))
        with _os_errors():
            with os.scandir(real) as it:
                entries = [(e.path, e.stat(follow_symlinks=False)) for e in it]
        return sorted((self._info(p, st) for p, st in entries), key=lambda i: i.path)

    def _make_dir_sync(self, path: StrPath) -> None:
        real = str(self.resolve_sync(path))
        with _os_errors():
            os.makedirs(real, exist_ok=True)
        if not self._inside(os.path.realpath(real)):  # a component was swapped meanwhile
            raise PathEscapeError(path, self._root, "was redirected outside")

    def _remove_sync(self, path: StrPath) -> None:
        dir_fd, name = self._open_parent(path)
        try:
            with _os_errors():
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

    async def resolve(self, path: StrPath) -> Path:
        """The absolute, symlink-free path inside the root that ``path`` names.

        Raises:
            PathEscapeError: it resolves outside the root (``..``, absolute, or via a symlink).

        Cancellation: while waiting for admission nothing happens; once resolving it finishes.
        """
        return await self._hop(self.resolve_sync, path)

    async def read_bytes(self, path: StrPath, *, max_size: int | None = None) -> bytes:
        """The file's content.

        Args:
            path: relative to the root (or absolute inside it).
            max_size: the cap in bytes (default: the file system's ``max_read_size``).

        Raises:
            PathEscapeError: the path leaves the root.
            FileTooLargeError: the file is larger than the cap.
            NoSuchFileError: it does not exist. FileAccessError: another OS refusal.

        Cancellation: while waiting for admission nothing is read; once the worker thread runs,
        the read completes and the cancellation takes effect at the caller's next checkpoint.
        """
        limit = self._max_read_size if max_size is None else max_size
        return await self._hop(self._read_sync, path, limit)

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
            dir_fd, temp, name = await trio.to_thread.run_sync(self._write_temp, path, data)
            try:
                await trio.lowlevel.checkpoint_if_cancelled()
            except BaseException:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(self._discard_temp, dir_fd, temp)
                raise
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._commit_temp, dir_fd, temp, name)

    async def write_text(self, path: StrPath, text: str, *, encoding: str = "utf-8") -> None:
        """:meth:`write_bytes` of the encoded text (same errors and cancellation)."""
        await self.write_bytes(path, text.encode(encoding))

    async def append(self, path: StrPath, data: bytes) -> None:
        """Append one record (the file is created if missing).

        Records of concurrent appenders using this class, in threads or processes, never
        interleave: the write happens under an exclusive ``flock`` with ``O_APPEND``.

        Raises:
            PathEscapeError: the path leaves the root. FileAccessError: an OS refusal.

        Cancellation: while waiting for admission nothing is written; once the worker thread
        runs, the whole record is appended and the cancellation takes effect afterwards.
        """
        await self._hop(self._append_sync, path, data)

    async def exists(self, path: StrPath) -> bool:
        """Whether the path exists (an escaping path raises :class:`PathEscapeError`)."""
        return await self._hop(self._exists_sync, path)

    async def stat(self, path: StrPath) -> FileInfo:
        """Size, modification time and kind of what the (resolved) path names.

        Raises:
            PathEscapeError, NoSuchFileError, FileAccessError.
        """
        return await self._hop(self._stat_sync, path)

    async def list_dir(self, path: StrPath = ".") -> list[FileInfo]:
        """The entries of a directory sorted by path; symlinks are reported, not followed."""
        return await self._hop(self._list_sync, path)

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
