"""Atomic replacement of a file's content: a temporary file next to it, fsynced, renamed over it.

A temporary file in the target's directory is written and fsynced, renamed over the target, then the
directory is fsynced. A crash at any point leaves the old content or the new; a temporary file that is
never committed is removed by :func:`discard_temp`.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from typing import Final

from engine._ports._fs import StrPath

from ._confinement import Confinement
from ._errors import os_errors

__all__ = ["TEMP_SUFFIX", "commit_temp", "discard_temp", "write_temp"]

#: Suffix of the temporary files atomic writes create (a watcher may ignore ``*.scribe-tmp``).
TEMP_SUFFIX: Final = ".scribe-tmp"


def write_temp(confinement: Confinement, path: StrPath, data: bytes) -> tuple[int, str, str]:
    """Write ``data`` to a fresh temporary file next to the target; fsync it.

    Returns:
        (directory fd, temporary name, final name). The caller renames or removes it.
    """
    # Follow a final symlink that stays inside the root: the target file is replaced.
    real = str(confinement.resolve(path))
    dir_fd, name = confinement.open_parent(real)
    try:
        with os_errors():
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


def commit_temp(dir_fd: int, temp: str, name: str) -> None:
    """Rename the temporary file over the target and fsync the directory; closes ``dir_fd``."""
    try:
        with os_errors():
            try:
                os.rename(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                os.unlink(temp, dir_fd=dir_fd)
                raise
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def discard_temp(dir_fd: int, temp: str) -> None:
    """Remove the temporary file; closes ``dir_fd``."""
    try:
        os.unlink(temp, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    finally:
        os.close(dir_fd)
