"""The size limits of user-supplied fields, in one place, for every front door to enforce at its edge.

The control protocol (``adapters.control``), the feed's client messages (``adapters.feed``) and any
later input (a tool server, editor hooks) take their limits from here, so the same field has the
same limit whichever way it arrives. The engine checks the fields it stores (names, tags,
descriptions, notes, backlog ids) against the same constants, so a value refused at an edge is also
refused by a direct call. A refused value raises :class:`FieldLimitError`, which names the field
and the limit. Imports no trio.
"""

from __future__ import annotations

import re
from typing import Final

from ._errors import InvalidArgumentError

__all__ = [
    "BACKLOG_ID_MAX",
    "BACKLOG_ID_PATTERN",
    "DESCRIPTION_MAX",
    "DESCRIPTION_PREVIEW",
    "FEED_MESSAGE_MAX",
    "GENERATION_TEXT_MAX",
    "INT_MAX",
    "LIMIT_MAX",
    "LIST_MAX",
    "MEMORY_TEXT_MAX",
    "NAME_MAX",
    "NOTE_MAX",
    "PAGE_MAX",
    "PATH_MAX",
    "QUERY_MAX",
    "RECALL_MAX",
    "REHYDRATE_BUDGET_MAX",
    "REHYDRATE_TIMEOUT_MAX",
    "SETTINGS_DEPTH_MAX",
    "SETTINGS_MAX",
    "SOURCE_ID_MAX",
    "TAG_MAX",
    "FieldLimitError",
    "check_backlog_id",
    "check_count",
    "check_length",
    "preview",
]

#: The longest name, id, kind, priority, state or role, in characters.
NAME_MAX: Final = 200
#: The longest tag, in characters.
TAG_MAX: Final = 100
#: The longest session description, in characters.
DESCRIPTION_MAX: Final = 4096
#: How much of a description a list or a snapshot shows (the whole text is in ``info``).
DESCRIPTION_PREVIEW: Final = 200
#: The longest note appended to a worklog, in characters.
NOTE_MAX: Final = 20_000
#: The longest path, in characters.
PATH_MAX: Final = 4096
#: The most items of a list argument (tags, states, files, related sessions).
LIST_MAX: Final = 100
#: The most items one call may ask for (a worklog's ``limit``, a search's ``limit``).
LIMIT_MAX: Final = 10_000
#: The most sessions one page of a session list holds (also its default size).
PAGE_MAX: Final = 100
#: The largest integer a store takes (a signed 64-bit integer).
INT_MAX: Final = 2**63 - 1
#: The longest backlog id, in characters.
BACKLOG_ID_MAX: Final = 64
#: What a backlog id looks like: a letter, then letters, digits, ``-`` or ``_`` (no ``/``, no ``.``),
#: so it can name a file (``backlog/{backlog}.md``) without leaving its directory.
BACKLOG_ID_PATTERN: Final = rf"^[A-Za-z][A-Za-z0-9_-]{{0,{BACKLOG_ID_MAX - 1}}}$"
#: The longest search query text, in characters.
QUERY_MAX: Final = 4096
#: The longest text kept in memory (a message, a decision, a fact's value), in characters.
MEMORY_TEXT_MAX: Final = 64 * 1024
#: The longest source id of a message (the id of the transcript record it was imported from).
SOURCE_ID_MAX: Final = 1024
#: The longest prompt or output the generation cache keeps, in characters.
GENERATION_TEXT_MAX: Final = 256 * 1024
#: The most hits one memory recall answers.
RECALL_MAX: Final = 100
#: The largest token budget of one rehydrated bundle.
REHYDRATE_BUDGET_MAX: Final = 32_000
#: The longest deadline of one rehydration, in seconds.
REHYDRATE_TIMEOUT_MAX: Final = 30.0
#: The largest generation settings object, in bytes of JSON.
SETTINGS_MAX: Final = 16 * 1024
#: The deepest nesting of a generation settings object (the object itself is depth 1).
SETTINGS_DEPTH_MAX: Final = 8
#: The longest feed client message (a websocket text frame), in bytes.
FEED_MESSAGE_MAX: Final = 4096

_BACKLOG_ID: Final = re.compile(BACKLOG_ID_PATTERN)


class FieldLimitError(InvalidArgumentError):
    """A user-supplied field is too long, has too many items or is out of range.

    Attributes:
        field: the field's name (``description``, ``tags``, ``limit`` ...).
        limit: the limit it broke.
    """

    def __init__(self, field: str, limit: int, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.limit = limit


def check_length(field: str, value: str, maximum: int) -> str:
    """``value`` unchanged if it has at most ``maximum`` characters.

    Raises:
        FieldLimitError: it is longer (the message names ``field`` and the limit).
    """
    if len(value) > maximum:
        raise FieldLimitError(
            field, maximum, f"{field} is {len(value)} characters long; the limit is {maximum}"
        )
    return value


def check_count(field: str, count: int, maximum: int) -> int:
    """``count`` (items of a list, or a number asked for) unchanged if it is at most ``maximum``.

    Raises:
        FieldLimitError: it is larger.
    """
    if count > maximum:
        raise FieldLimitError(field, maximum, f"{field} is {count}; the limit is {maximum}")
    return count


def check_backlog_id(value: str, *, field: str = "backlog id") -> str:
    """``value`` stripped if it is a backlog id (:data:`BACKLOG_ID_PATTERN`).

    Raises:
        FieldLimitError: it is longer than :data:`BACKLOG_ID_MAX`.
        InvalidArgumentError: it does not match the pattern (``../x``, ``a/b``, ``B 1`` ...).
    """
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{field} must be a string, not {type(value).__name__}")
    stripped = value.strip()
    check_length(field, stripped, BACKLOG_ID_MAX)
    if not _BACKLOG_ID.fullmatch(stripped):
        raise InvalidArgumentError(
            f"invalid {field} {stripped!r}: a letter, then letters, digits, '-' or '_' "
            f"(at most {BACKLOG_ID_MAX} characters)"
        )
    return stripped


def preview(text: str, maximum: int = DESCRIPTION_PREVIEW) -> tuple[str, bool]:
    """The first ``maximum`` characters of ``text`` (ending in ``…`` when cut) and whether it was cut."""
    if len(text) <= maximum:
        return text, False
    return text[: maximum - 1] + "…", True
