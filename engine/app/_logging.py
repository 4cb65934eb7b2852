"""The daemon's logging: stdlib ``logging`` to standard error and to a rotating file in the home.

:func:`daemon_logging` installs two handlers on the root logger for as long as the daemon runs: one
on standard error and one on ``$SCRIBE_HOME/logs/scribe.log`` (rotated at 10 MB, five old files
kept; the directory 0700, every file 0600, a symlink in its place refused). Both write the same
format:

- ``text``: ``TIME LEVEL LOGGER: MESSAGE key=value ...``, one line per record. Control characters
  and bidi overrides in the message, the extra fields and the exception text are written as visible
  escapes by :func:`engine.visible` (``\\x1b``), so user text quoted in a message can neither
  drive a terminal nor forge a line; the lines of a traceback after the first are indented.
- ``json``: one JSON object per line with ``time``, ``level``, ``logger``, ``message``,
  ``exception`` (when there is one) and every extra field given with ``extra=``. Everything is
  JSON-escaped (ASCII only), so user text stays data.

Before either handler writes a record, :class:`engine.PrivacyLogFilter` removes its ``<private>``
text and redacts likely secrets (in the message, its arguments, the exception and ``extra=``).

The level applies to the ``engine`` and ``adapters`` loggers; other libraries' loggers log at
``info`` or above (their debug output can carry what the daemon must not write down).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import logging.handlers
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Final

from .._core._literal import visible
from .._core._privacy import Privacy
from .._core._privacy_log import PrivacyLogFilter

__all__ = [
    "LOG_BACKUPS",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "LOG_MAX_BYTES",
    "daemon_logging",
    "log_file",
]

#: The levels ``--log-level`` takes.
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
#: The formats ``--log-format`` takes.
LOG_FORMATS: Final = ("text", "json")
#: The log file is rotated when it would grow past this many bytes ...
LOG_MAX_BYTES: Final = 10 * 1024 * 1024
#: ... and this many old files are kept.
LOG_BACKUPS: Final = 5

_OWN_LOGGERS: Final = ("engine", "adapters")
_FILE_MODE: Final = 0o600
_DIR_MODE: Final = 0o700

#: What every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def log_file(home: Path) -> Path:
    """The daemon's log file in ``home``."""
    return home / "logs" / "scribe.log"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


class _Formatter(logging.Formatter):
    converter = staticmethod(time.gmtime)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return super().formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"


class _TextFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = (
            f"{self.formatTime(record)} {record.levelname} {record.name}: "
            + visible(record.getMessage())
            + "".join(f" {visible(k)}={visible(v)}" for k, v in _extras(record).items())
        )
        more: list[str] = []
        if record.exc_info:
            more += self.formatException(record.exc_info).splitlines()
        elif record.exc_text:
            more += record.exc_text.splitlines()
        if record.stack_info:
            more += self.formatStack(record.stack_info).splitlines()
        return "\n".join([line, *("  " + visible(x) for x in more)])


class _JsonFormatter(_Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        for key, value in _extras(record).items():
            out.setdefault(key, value)
        return json.dumps(out, default=repr)


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    # Every file it opens (the first and each after a rotation) is created 0600; a symlink is refused.

    def _open(self) -> io.TextIOWrapper:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.baseFilename, flags, _FILE_MODE)
        try:
            os.fchmod(fd, _FILE_MODE)
            return open(fd, "a", encoding=self.encoding, errors=self.errors)
        except BaseException:
            os.close(fd)
            raise


def _formatter(fmt: str) -> logging.Formatter:
    return _JsonFormatter() if fmt == "json" else _TextFormatter()


@contextlib.contextmanager
def daemon_logging(
    home: Path,
    *,
    level: str = "info",
    fmt: str = "text",
    stream: IO[str] | None = None,
    privacy: Privacy | None = None,
) -> Iterator[Path]:
    """Log to ``stream`` (standard error) and to the home's rotating log file until the block ends.

    Args:
        home: the daemon's home (created 0700 if missing, its ``logs`` directory too).
        level: one of :data:`LOG_LEVELS`.
        fmt: one of :data:`LOG_FORMATS`.
        stream: where the second handler writes (None: ``sys.stderr``).
        privacy: how both handlers scrub each record before writing it (None: ``Privacy()``:
            ``<private>`` text removed, likely secrets redacted; see :class:`engine.Privacy`).

    Yields:
        The log file.

    Raises:
        OSError: the log directory or file cannot be made (a symlink in the file's place included).
    """
    if level not in LOG_LEVELS:
        raise ValueError(f"level must be one of {LOG_LEVELS}, not {level!r}")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"fmt must be one of {LOG_FORMATS}, not {fmt!r}")
    path = log_file(home)
    home.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    path.parent.mkdir(mode=_DIR_MODE, exist_ok=True)
    os.chmod(path.parent, _DIR_MODE)
    numeric = logging.getLevelNamesMapping()[level.upper()]
    to_file = _PrivateRotatingFileHandler(
        path,
        maxBytes=LOG_MAX_BYTES,
        backupCount=LOG_BACKUPS,
        encoding="utf-8",
        errors="backslashreplace",
    )
    to_stream = logging.StreamHandler(sys.stderr if stream is None else stream)
    root = logging.getLogger()
    own = [logging.getLogger(name) for name in _OWN_LOGGERS]
    saved = (root.level, [x.level for x in own])
    scrubbing = PrivacyLogFilter(privacy)
    for handler in (to_file, to_stream):
        handler.addFilter(scrubbing)
        handler.setFormatter(_formatter(fmt))
        root.addHandler(handler)
    root.setLevel(max(numeric, logging.INFO))
    for logger in own:
        logger.setLevel(numeric)
    try:
        yield path
    finally:
        for handler in (to_file, to_stream):
            root.removeHandler(handler)
        to_file.close()
        root.setLevel(saved[0])
        for logger, was in zip(own, saved[1], strict=True):
            logger.setLevel(was)
