"""The home directory: only its owner may list or read it.

:func:`prepare_home` creates the home with mode 0700 and tightens an existing one whose group or
others may read or write it (or, for a process not running as root, search it) to 0700, and every
regular file of its own directly in it that others could read to 0600, saying what it changed. A home
it does not own, or a shared directory (sticky, like ``/tmp``), is refused rather than changed. Running as root,
the embedded PostgreSQL's system user must pass through the home to its data directory, so a search
bit for others is kept there (it reveals no name and opens no file: everything inside is 0600 or, for
the data directory, PostgreSQL's own 0700).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from .._core._errors import ScribeError

__all__ = ["FILE_MODE", "HOME_MODE", "UnsafeHomeError", "prepare_home", "private_file"]

#: The home's mode.
HOME_MODE: Final = 0o700
#: The mode of the files the daemon keeps in its home.
FILE_MODE: Final = 0o600


class UnsafeHomeError(ScribeError):
    """The home is another user's, or a directory shared with others (such as ``/tmp``)."""


def prepare_home(home: Path) -> list[str]:
    """Create ``home`` (mode 0700, parents as the umask says) or tighten it; what was tightened.

    Raises:
        UnsafeHomeError: another user owns it, or it is a shared (sticky) directory.
        OSError: it cannot be created, or its mode cannot be changed.
    """
    home.mkdir(mode=HOME_MODE, parents=True, exist_ok=True)
    notes: list[str] = []
    info = home.stat()
    mode = stat.S_IMODE(info.st_mode)
    uid = os.geteuid()
    if info.st_uid != uid:
        raise UnsafeHomeError(f"the home {home} belongs to another user; choose one of your own")
    if mode & stat.S_ISVTX:
        raise UnsafeHomeError(
            f"the home {home} is a shared directory (mode {mode:04o}); choose one of your own"
        )
    allowed = HOME_MODE | (stat.S_IXOTH if uid == 0 else 0)
    if mode & ~allowed:
        wanted = mode & allowed | HOME_MODE
        home.chmod(wanted)
        notes.append(f"tightened the home {home} from mode {mode:04o} to {wanted:04o}")
    with os.scandir(home) as entries:
        for entry in entries:
            if not entry.is_file(follow_symlinks=False):
                continue
            file_info = entry.stat(follow_symlinks=False)
            file_mode = stat.S_IMODE(file_info.st_mode)
            if file_mode & 0o077 and file_info.st_uid == uid:
                os.chmod(entry.path, file_mode & FILE_MODE, follow_symlinks=False)
                notes.append(
                    f"tightened {entry.path} from mode {file_mode:04o} to {file_mode & FILE_MODE:04o}"
                )
    return notes


def private_file(path: Path, flags: int) -> int:
    """``os.open(path, flags)`` creating the file with mode 0600; its descriptor."""
    return os.open(path, flags | os.O_CREAT, FILE_MODE)
