"""The file system family's one error table: OS errors as the engine's typed file system errors.

The typed errors are ``OSError`` subclasses themselves (``errno``, ``strerror`` and ``filename`` are
kept), and the OS error is their ``__cause__``. One already typed passes through unchanged.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Final

from engine import FileAccessError, FileSystemError, NoSuchFileError

from .._errors import ErrorTable, map_exceptions

__all__ = ["FS_ERRORS", "os_errors"]


def _unchanged(exc: FileSystemError) -> None:
    return None


def _no_such_file(exc: FileNotFoundError) -> NoSuchFileError:
    return NoSuchFileError(exc.errno, exc.strerror, exc.filename)


def _access(exc: OSError) -> FileAccessError:
    return FileAccessError(exc.errno, exc.strerror, exc.filename)


#: OS error -> typed file system error (first match wins).
FS_ERRORS: Final[ErrorTable] = {
    FileSystemError: _unchanged,
    FileNotFoundError: _no_such_file,
    OSError: _access,
}


def os_errors() -> AbstractContextManager[None]:
    """Translate OS errors raised in the block through :data:`FS_ERRORS`.

    Cancellation: never mapped; it passes through.
    """
    return map_exceptions(FS_ERRORS)
