"""Opening only regular files: FIFOs, sockets and devices are refused before any read or write.

A FIFO opened for reading blocks until a writer comes (for writing: until a reader comes), a device
may never end or act on being opened, a socket cannot be opened at all. So the entry is checked with
``lstat`` before it is opened, opened with ``O_NONBLOCK`` (a FIFO swapped in meanwhile then opens at
once instead of blocking), ``O_NOFOLLOW`` (the path was resolved already: a symlink swapped in is
refused) and ``O_NOCTTY``, and the opened descriptor is checked again with ``fstat`` before anything
is read or written through it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from engine import NotRegularFileError

from ._errors import os_errors

__all__ = ["kind_of", "open_regular", "require_regular"]

_KINDS = (
    (stat.S_ISFIFO, "FIFO"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISLNK, "symlink"),
    (stat.S_ISDIR, "directory"),
)


def kind_of(mode: int) -> str:
    """What an entry of this ``st_mode`` is, in words (``"regular file"``, ``"FIFO"``, ...)."""
    if stat.S_ISREG(mode):
        return "regular file"
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "special file"


def require_regular(st: os.stat_result, real: str) -> None:
    """Refuse what ``st`` describes unless it is a regular file.

    Raises:
        IsADirectoryError: a directory (the OS's own error for it).
        NotRegularFileError: a FIFO, socket, device or other special file.
    """
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", real)
    raise NotRegularFileError(Path(real), kind_of(st.st_mode))


def open_regular(real: str, flags: int, mode: int = 0o666) -> int:
    """Open the regular file at the resolved path ``real``; never blocks on a special file.

    Args:
        real: an absolute, symlink-free path.
        flags: ``os.O_RDONLY``, or write flags (``O_CREAT`` creates a missing regular file).
        mode: permission bits of a file ``O_CREAT`` creates.

    Returns:
        The descriptor (the caller closes it), with ``O_NONBLOCK`` set: it makes no difference to
        the reads and writes of a regular file.

    Raises:
        IsADirectoryError, NotRegularFileError: see :func:`require_regular`.
        NoSuchFileError, FileAccessError: the OS refused (a symlink that loops: ``ELOOP``).
    """
    with os_errors():
        try:
            st = os.lstat(real)
        except FileNotFoundError:
            if not flags & os.O_CREAT:
                raise
        else:
            if not stat.S_ISLNK(
                st.st_mode
            ):  # one left after resolving loops: O_NOFOLLOW refuses it
                require_regular(st, real)
        all_flags = flags | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
        fd = os.open(real, all_flags, mode)
        try:
            require_regular(os.fstat(fd), real)
        except BaseException:
            os.close(fd)
            raise
        return fd
