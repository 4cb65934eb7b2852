"""Log records scrubbed before any handler writes them: a :class:`logging.Filter`. Imports no trio.

A message can quote what a user typed (a prompt, a note, a failing command line with its token); the
log file is kept for weeks. :class:`PrivacyLogFilter`, installed on a handler, rewrites each record
it passes with :meth:`engine.Privacy.scrub` before the handler formats it.
"""

from __future__ import annotations

import logging
from typing import Final

from ._privacy import Privacy

__all__ = ["PrivacyLogFilter"]

#: What every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_DONE: Final = "_privacy_scrubbed"
_PLAIN: Final = (int, float, bool, type(None))
_exceptions: Final = logging.Formatter()


class PrivacyLogFilter(logging.Filter):
    """Scrubs a record's message, exception and stack text and ``extra=`` fields; drops nothing.

    The message is formatted with its arguments first (``record.msg`` becomes the scrubbed text and
    ``record.args`` None, so a secret in an argument is found too); an exception is formatted to
    ``record.exc_text`` and scrubbed (``record.exc_info`` becomes None, so every formatter writes
    the scrubbed text); an ``extra=`` field that is a string, dict, list or tuple is scrubbed as a
    JSON value, a number, boolean or None is kept, anything else is replaced by its scrubbed
    ``str()``. A record is scrubbed once, however many handlers carry the filter.

    Args:
        privacy: the rules (default: ``Privacy()``, ``<private>`` removed and secrets redacted).
    """

    def __init__(self, privacy: Privacy | None = None) -> None:
        super().__init__()
        self._privacy = Privacy() if privacy is None else privacy

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub ``record`` in place; always True (the record is kept)."""
        if getattr(record, _DONE, False):
            return True
        scrub = self._privacy.scrub
        try:
            message = record.getMessage()
        except Exception:  # a bad format string or argument: keep what there is, scrubbed
            message = f"{record.msg!s} {record.args!r}"
        record.msg = scrub(message)
        record.args = None
        if record.exc_info:
            record.exc_text = _exceptions.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        for key, value in list(record.__dict__.items()):
            if key in _STANDARD or key.startswith("_") or isinstance(value, _PLAIN):
                continue
            if isinstance(value, str | dict | list | tuple):
                record.__dict__[key] = self._privacy.scrub_value(value)
            else:
                record.__dict__[key] = scrub(str(value))
        setattr(record, _DONE, True)
        return True
