"""A file system in memory: :class:`engine.FileSystem` over a dictionary of files under a root."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final, final

import trio

from .._core._errors import InvalidArgumentError
from .._ports._fs import (
    FileAccessError,
    FileInfo,
    FileSystem,
    FileTooLargeError,
    NoSuchFileError,
    PathEscapeError,
    StrPath,
)

__all__ = ["InMemoryFileSystem"]

#: The default read cap, as the scoped file system's: 16 MiB.
DEFAULT_MAX_READ_SIZE: Final = 16 * 1024 * 1024


def _os_error(cls: type[FileAccessError], code: int, where: Path) -> FileAccessError:
    return cls(code, os.strerror(code), str(where))


@final
class InMemoryFileSystem:
    """Files under a root directory that exists only in memory. Implements :class:`engine.FileSystem`.

    Paths resolve as the scoped file system's do (relative to the root, or absolute inside it;
    ``..`` may not leave the root), with the same typed errors, ``OSError`` attributes included.
    There are no symlinks, and a write is atomic because nothing runs between its check and its
    change. :class:`FakeGit` can use one as its work tree.

    Args:
        root: the root's absolute path (nothing on disk is touched).
        files: initial content, root-relative path to bytes or text (parents are made).
        max_read_size: the default read cap in bytes.
    """

    def __init__(
        self,
        root: StrPath = "/memory",
        *,
        files: dict[str, bytes | str] | None = None,
        max_read_size: int = DEFAULT_MAX_READ_SIZE,
    ) -> None:
        raw = os.fspath(root)
        if not isinstance(raw, str) or not os.path.isabs(raw):
            raise InvalidArgumentError(f"the root must be an absolute path, not {root!r}")
        if max_read_size < 0:
            raise ValueError("max_read_size must be >= 0")
        self._root = Path(os.path.normpath(raw))
        self._root_str = str(self._root)
        self._max_read_size = max_read_size
        self._last_ns = 0
        self._files: dict[str, tuple[bytes, int]] = {}
        self._dirs: dict[str, int] = {"": self._tick()}
        for path, content in (files or {}).items():
            self.write_nowait(path, content)

    def __repr__(self) -> str:
        return f"<InMemoryFileSystem {self._root_str!r}: {len(self._files)} files>"

    @property
    def root(self) -> Path:
        """The root directory."""
        return self._root

    # -------------------------------------------------------------------- resolution (sync)

    def _tick(self) -> int:
        now = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = now
        return now

    def _rel(self, path: StrPath) -> str:
        """The root-relative form of ``path`` (``""`` for the root itself)."""
        raw = os.fspath(path)
        if not isinstance(raw, str):
            raise TypeError(f"paths are str or os.PathLike[str], not {type(raw).__name__}")
        if "\0" in raw:
            raise PathEscapeError(path, self._root, "contains a NUL byte; refused under")
        real = os.path.normpath(os.path.join(self._root_str, raw))
        if real == self._root_str:
            return ""
        prefix = self._root_str.rstrip("/") + "/"
        if not real.startswith(prefix):
            raise PathEscapeError(path, self._root)
        return real[len(prefix) :]

    def _abs(self, rel: str) -> Path:
        return self._root / rel if rel else self._root

    @staticmethod
    def _parent(rel: str) -> str:
        return rel.rpartition("/")[0]

    def _info(self, rel: str) -> FileInfo:
        if rel in self._dirs:
            return FileInfo(rel, 0, self._dirs[rel], is_dir=True, is_file=False, is_symlink=False)
        data, mtime = self._files[rel]
        return FileInfo(rel, len(data), mtime, is_dir=False, is_file=True, is_symlink=False)

    def _check_writable(self, rel: str) -> None:
        if rel == "" or rel in self._dirs:
            raise _os_error(FileAccessError, errno.EISDIR, self._abs(rel))
        parent = self._parent(rel)
        if parent in self._files:
            raise _os_error(FileAccessError, errno.ENOTDIR, self._abs(parent))
        if parent not in self._dirs:
            raise _os_error(NoSuchFileError, errno.ENOENT, self._abs(rel))

    def write_nowait(self, path: StrPath, data: bytes | str) -> None:
        """Set a file's content at once, making missing parent directories (for setting up tests)."""
        rel = self._rel(path)
        parent = self._parent(rel)
        if parent and parent not in self._dirs:
            self._make_dirs(parent)
        self._check_writable(rel)
        self._files[rel] = (data.encode() if isinstance(data, str) else bytes(data), self._tick())

    def _make_dirs(self, rel: str) -> None:
        parts = rel.split("/") if rel else []
        for i in range(1, len(parts) + 1):
            step = "/".join(parts[:i])
            if step in self._files:
                code = errno.EEXIST if i == len(parts) else errno.ENOTDIR
                raise _os_error(FileAccessError, code, self._abs(step))
            if step not in self._dirs:
                self._dirs[step] = self._tick()

    def files_nowait(self) -> dict[str, bytes]:
        """Every file's content by root-relative path (a copy)."""
        return {rel: data for rel, (data, _) in self._files.items()}

    # ---------------------------------------------------------------------- async interface

    async def resolve(self, path: StrPath) -> Path:
        """The absolute path inside the root that ``path`` names.

        Raises:
            PathEscapeError: it leaves the root.

        Cancellation: checked before; nothing else happens.
        """
        await trio.lowlevel.checkpoint()
        return self._abs(self._rel(path))

    async def read_bytes(self, path: StrPath, *, max_size: int | None = None) -> bytes:
        """The file's content.

        Raises:
            PathEscapeError: the path leaves the root.
            NoSuchFileError: it does not exist.
            FileAccessError: it is a directory.
            FileTooLargeError: it is larger than ``max_size`` (default: ``max_read_size``).

        Cancellation: checked before; nothing else happens.
        """
        await trio.lowlevel.checkpoint()
        rel = self._rel(path)
        if rel in self._dirs:
            raise _os_error(FileAccessError, errno.EISDIR, self._abs(rel))
        if rel not in self._files:
            raise _os_error(NoSuchFileError, errno.ENOENT, self._abs(rel))
        data = self._files[rel][0]
        limit = self._max_read_size if max_size is None else max_size
        if len(data) > limit:
            raise FileTooLargeError(self._abs(rel), len(data), limit)
        return data

    async def read_text(
        self, path: StrPath, *, max_size: int | None = None, encoding: str = "utf-8"
    ) -> str:
        """:meth:`read_bytes` decoded. Cancellation: as :meth:`read_bytes`."""
        return (await self.read_bytes(path, max_size=max_size)).decode(encoding)

    async def write_bytes(self, path: StrPath, data: bytes) -> None:
        """Replace the file's content (the parent directory must exist).

        Raises:
            PathEscapeError: the path leaves the root.
            NoSuchFileError: the parent directory does not exist.
            FileAccessError: the path is a directory, or a parent is a file.

        Cancellation: checked before anything changes; the old content or the new, never torn.
        """
        await trio.lowlevel.checkpoint()
        rel = self._rel(path)
        self._check_writable(rel)
        self._files[rel] = (bytes(data), self._tick())

    async def write_text(self, path: StrPath, text: str, *, encoding: str = "utf-8") -> None:
        """:meth:`write_bytes` of the encoded text. Cancellation: as :meth:`write_bytes`."""
        await self.write_bytes(path, text.encode(encoding))

    async def append(self, path: StrPath, data: bytes) -> None:
        """Append one record (the file is created if missing); records never interleave.

        Raises: as :meth:`write_bytes`. Cancellation: checked before; the record is whole or absent.
        """
        await trio.lowlevel.checkpoint()
        rel = self._rel(path)
        self._check_writable(rel)
        old = self._files.get(rel, (b"", 0))[0]
        self._files[rel] = (old + bytes(data), self._tick())

    async def exists(self, path: StrPath) -> bool:
        """Whether the path exists (an escaping path raises). Cancellation: checked before."""
        await trio.lowlevel.checkpoint()
        rel = self._rel(path)
        return rel in self._files or rel in self._dirs

    async def stat(self, path: StrPath) -> FileInfo:
        """Size, modification time and kind of the entry (a directory's size is 0 here).

        Raises:
            NoSuchFileError: it does not exist.

        Cancellation: checked before.
        """
        await trio.lowlevel.checkpoint()
        rel = self._rel(path)
        if rel not in self._files and rel not in self._dirs:
            raise _os_error(NoSuchFileError, errno.ENOENT, self._abs(rel))
        return self._info(rel)

    async def list_dir(self, path: StrPath = ".") -> list[FileInfo]:
        """The entries of a directory, sorted by path.

        Raises:
            NoSuchFileError: it does not exist.
            FileAccessError: it is a file.

        Cancellation: checked before.
        """
        await trio.lowlevel.checkpoint()
        rel = self._rel(path)
        if rel in self._files:
            raise _os_error(FileAccessError, errno.ENOTDIR, self._abs(rel))
        if rel not in self._dirs:
            raise _os_error(NoSuchFileError, errno.ENOENT, self._abs(rel))
        children = [p for p in (*self._files, *self._dirs) if p and self._parent(p) == rel]
        return [self._info(p) for p in sorted(children)]

    async def make_dir(self, path: StrPath) -> None:
        """Create the directory and missing parents (no error if it exists).

        Raises:
            FileAccessError: the path or one of its parents is a file.

        Cancellation: checked before.
        """
        await trio.lowlevel.checkpoint()
        self._make_dirs(self._rel(path))

    async def remove(self, path: StrPath) -> None:
        """Remove a file or an empty directory.

        Raises:
            PathEscapeError: the path leaves the root or names the root itself.
            NoSuchFileError: it does not exist.
            FileAccessError: it is a directory that is not empty.

        Cancellation: checked before.
        """
        await trio.lowlevel.checkpoint()
        rel = self._rel(path)
        if rel == "":
            raise PathEscapeError(path, self._root, "names the root itself; refused for")
        if rel in self._files:
            del self._files[rel]
        elif rel in self._dirs:
            if any(self._parent(p) == rel for p in (*self._files, *self._dirs) if p):
                raise _os_error(FileAccessError, errno.ENOTEMPTY, self._abs(rel))
            del self._dirs[rel]
        else:
            raise _os_error(NoSuchFileError, errno.ENOENT, self._abs(rel))


if TYPE_CHECKING:

    def _conforms(fs: InMemoryFileSystem) -> FileSystem:
        return fs
