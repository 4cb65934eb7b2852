"""Confinement to one root directory: resolving paths inside it and checking opened descriptors.

Every path is resolved (symlinks followed) and must stay inside the root. After a file or directory is
opened, the descriptor's real path (``/proc/self/fd``) is checked again, so a symlink swapped in between
cannot redirect the operation outside.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import final

from engine import FileInfo, PathEscapeError
from engine._ports._fs import StrPath

from ._errors import os_errors

__all__ = ["Confinement"]


@final
class Confinement:
    """Paths under the resolved directory ``root`` (an absolute, symlink-free path)."""

    def __init__(self, root: str) -> None:
        self._root_str = root
        self._root = Path(root)

    def inside(self, real: str) -> bool:
        """Whether the resolved path ``real`` is the root or below it."""
        return real == self._root_str or real.startswith(self._root_str.rstrip("/") + "/")

    def _joined(self, path: StrPath) -> str:
        raw = os.fspath(path)
        if not isinstance(raw, str):
            raise TypeError(f"paths are str or os.PathLike[str], not {type(raw).__name__}")
        if "\0" in raw:
            raise PathEscapeError(path, self._root, "contains a NUL byte; refused under")
        return os.path.join(self._root_str, raw)

    def resolve(self, path: StrPath) -> Path:
        """The absolute, symlink-free path inside the root that ``path`` names (blocking).

        Raises:
            PathEscapeError: it resolves outside the root.
        """
        real = os.path.realpath(self._joined(path))
        if not self.inside(real):
            raise PathEscapeError(path, self._root)
        return Path(real)

    def _split_parent(self, path: StrPath) -> tuple[str, str]:
        """(resolved parent directory, final name) for operations on the entry itself."""
        joined = self._joined(path)
        head, name = os.path.split(joined.rstrip("/") or "/")
        if name in ("", ".", ".."):
            real = os.path.realpath(joined)
            if not self.inside(real):
                raise PathEscapeError(path, self._root)
            head, name = os.path.split(real)
            if real == self._root_str:
                raise PathEscapeError(path, self._root, "names the root itself; refused for")
        parent = os.path.realpath(head)
        if not self.inside(parent):
            raise PathEscapeError(path, self._root)
        return parent, name

    def check_fd(self, fd: int, path: StrPath) -> None:
        """Refuse a descriptor whose real location is outside the root (a racing symlink swap)."""
        try:
            where = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return  # no /proc: the path check above is all there is
        if not self.inside(where):
            raise PathEscapeError(path, self._root, "was redirected outside")

    def _relative(self, real: str) -> str:
        rel = os.path.relpath(real, self._root_str)
        return "" if rel == "." else rel.replace(os.sep, "/")

    def info(self, real: str, st: os.stat_result) -> FileInfo:
        """The :class:`engine.FileInfo` of ``real`` (its path relative to the root) from ``st``."""
        return FileInfo(
            path=self._relative(real),
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            is_dir=stat.S_ISDIR(st.st_mode),
            is_file=stat.S_ISREG(st.st_mode),
            is_symlink=stat.S_ISLNK(st.st_mode),
        )

    def open_parent(self, path: StrPath) -> tuple[int, str]:
        """Open the directory holding the entry ``path`` names, checked to be inside the root.

        Returns:
            (directory fd, the entry's name in it). The caller closes the descriptor.
        """
        parent, name = self._split_parent(path)
        with os_errors():
            dir_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            self.check_fd(dir_fd, path)
        except BaseException:
            os.close(dir_fd)
            raise
        return dir_fd, name
