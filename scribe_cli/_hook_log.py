"""The hook command's log, ``<home>/logs/hooks.log``: one line per failure, private and bounded.

The directory is created 0700 when missing (the home too), the file 0600; only a regular file of
this user's is written (no symlink, FIFO or device is followed or opened). Before a line would take
the file past :data:`MAX_HOOK_LOG` bytes the file is cut to its newest half (whole lines, replaced
atomically). Text from the payload and the daemon is written through :func:`escape_text`, so a line
stays one line and shows what it was sent. Writing the log never raises: a hook that cannot log still
exits 0.
"""

from __future__ import annotations

import os
import stat
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

if TYPE_CHECKING:  # no typing at run time: the hook command's start counts
    import re
    from typing import Final

__all__ = ["HOOK_LOG_NAME", "MAX_HOOK_LOG", "escape_text", "hook_log_path", "write_hook_log"]

#: The log file's name in ``<home>/logs``.
HOOK_LOG_NAME: Final = "hooks.log"
#: The most bytes the log file holds; past it the newest half is kept.
MAX_HOOK_LOG: Final = 1 << 20
#: The most characters of one line (the rest is cut, marked with an ellipsis).
MAX_LINE: Final = 2000

_DIR_MODE: Final = 0o700
_FILE_MODE: Final = 0o600
# The same characters engine.visible escapes: C0, DEL, C1, bidi controls, lone surrogates.
_PATTERN: Final = r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
_NAMED: Final = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    c = match.group()
    named = _NAMED.get(c)
    if named is not None:
        return named
    code = ord(c)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_text(text: object) -> str:
    """``text`` (``str()`` of it) on one line with every control character, bidi override and lone
    surrogate escaped, as ``engine.visible`` does (``\\x1b``, ``\\n``, ``\\u202e``). (``re`` is
    imported on the first call: a hook that succeeds never needs it.)"""
    import re

    return re.sub(_PATTERN, _escape, str(text))


def hook_log_path(home: str | os.PathLike[str]) -> str:
    """The hook log of ``home``."""
    return os.path.join(home, "logs", HOOK_LOG_NAME)


def _make_dirs(directory: str) -> None:
    missing: list[str] = []
    d = directory
    while not os.path.lexists(d):
        missing.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, _DIR_MODE)
        except FileExistsError:
            pass


def _open_dir(directory: str) -> int:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    info = os.fstat(fd)
    if info.st_uid != os.geteuid():
        os.close(fd)
        raise PermissionError(f"{directory} belongs to another user")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.fchmod(fd, _DIR_MODE)
    return fd


def _open_log(dir_fd: int) -> int:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(HOOK_LOG_NAME, flags, _FILE_MODE, dir_fd=dir_fd)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(fd)
        raise PermissionError(f"{HOOK_LOG_NAME} is not a regular file of this user")
    if stat.S_IMODE(info.st_mode) != _FILE_MODE:
        os.fchmod(fd, _FILE_MODE)
    return fd


def _trim(dir_fd: int, size: int) -> None:
    """Replace the log with its newest half (whole lines)."""
    keep = MAX_HOOK_LOG // 2
    src = os.open(HOOK_LOG_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        tail = os.pread(src, keep, max(0, size - keep))
    finally:
        os.close(src)
    if size > keep:
        tail = tail[tail.find(b"\n") + 1 :] if b"\n" in tail else b""
    tmp = f".{HOOK_LOG_NAME}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp, flags, _FILE_MODE, dir_fd=dir_fd)
    try:
        os.write(fd, tail)
    finally:
        os.close(fd)
    os.replace(tmp, HOOK_LOG_NAME, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def write_hook_log(home: str | os.PathLike[str], message: str) -> str | None:
    """Append one line, ``<UTC time> pid=<pid> <message>``, to the hook log of ``home``; None when
    written, else why not (it never raises). ``message`` is escaped (:func:`escape_text`) and cut
    to :data:`MAX_LINE` characters."""
    try:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = escape_text(message)
        if len(text) > MAX_LINE:
            text = text[: MAX_LINE - 1] + "…"
        line = f"{stamp} pid={os.getpid()} {text}\n".encode()
        directory = os.path.dirname(hook_log_path(home))
        _make_dirs(directory)
        dir_fd = _open_dir(directory)
        try:
            fd = _open_log(dir_fd)
            try:
                size = os.fstat(fd).st_size
                if size + len(line) > MAX_HOOK_LOG:
                    os.close(fd)
                    fd = -1
                    _trim(dir_fd, size)
                    fd = _open_log(dir_fd)
                os.write(fd, line)
            finally:
                if fd >= 0:
                    os.close(fd)
        finally:
            os.close(dir_fd)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
