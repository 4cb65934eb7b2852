"""The argument rules of the store ports, in one place: every store (PostgreSQL, in-memory) checks with these.

So each implementation rejects the same values with the same error, :class:`~engine.InvalidArgumentError`:

- **Seconds** (a time to live, an idle timeout, an age): an ``int`` or ``float``, finite and > 0 (an age may
  be 0). A ``bool`` is not a number of seconds and is refused. ``None``, where allowed, means "never".
- **Limits**: the most items a call returns, an ``int`` >= 1 and <= 2**63 - 1 (never a ``bool``). ``0`` is refused rather than
  answered with nothing, so a caller's off-by-one shows up at once. ``None``, where allowed, means no limit.
- **Text keys** (ids, fact types, keys, queries): non-empty strings.
- **Values stored as JSON**: serialisable by :func:`~engine.canonical_json`.

The record types (:class:`~engine.NewMessage`, :class:`~engine.NewDecision`, :class:`~engine.NewGeneration`,
:class:`~engine.SessionRecord`) check their fields with these on construction; stores check the loose
arguments of their calls. Imports no trio.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from .._core._errors import InvalidArgumentError
from .._core._limits import INT_MAX, PATH_MAX, FieldLimitError, check_length

__all__ = [
    "canonical_json",
    "check_confidence",
    "check_fact_scope",
    "check_invalidate_filters",
    "check_json",
    "check_limit",
    "check_optional_limit",
    "check_repo",
    "check_seconds",
    "check_text",
    "check_ttl",
]

_T = TypeVar("_T")


def canonical_json(value: Any) -> str:
    """Serialise ``value`` as canonical JSON: sorted keys, no spaces, UTF-8, no NaN.

    What this accepts is what a store may keep as a JSON value.

    Raises:
        InvalidArgumentError: ``value`` is not JSON-serialisable.
    """
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"not JSON-serialisable: {exc}") from None


def check_seconds(what: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as seconds: a finite ``int`` or ``float`` (not a ``bool``) > 0, or >= 0 with ``allow_zero``.

    Raises:
        InvalidArgumentError: Anything else (the message names ``what``).
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidArgumentError(f"{what} must be finite seconds {bound}, got {value!r}")
    return float(value)


def check_ttl(ttl: object, *, required: bool = False) -> float | None:
    """A time to live: seconds > 0, or ``None`` (the row never expires) unless ``required``.

    Raises:
        InvalidArgumentError: ``True``, 0, a negative, an infinite or NaN value, a non-number, or ``None``
            when ``required``.
    """
    if ttl is None:
        if required:
            raise InvalidArgumentError("a ttl is required here (seconds > 0), got None")
        return None
    return check_seconds("ttl", ttl)


def check_limit(limit: object, *, what: str = "limit") -> int:
    """A limit: an ``int`` >= 1 (not a ``bool``) and at most :data:`~engine.INT_MAX` (what a store's
    64-bit integer holds).

    Raises:
        InvalidArgumentError: Anything else, ``0`` included (:class:`~engine.FieldLimitError` past
            :data:`~engine.INT_MAX`).
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgumentError(f"{what} must be an int >= 1, got {limit!r}")
    if limit > INT_MAX:
        raise FieldLimitError(what, INT_MAX, f"{what} must be at most {INT_MAX}, got {limit}")
    return limit


def check_optional_limit(limit: object, *, what: str = "limit") -> int | None:
    """A limit as :func:`check_limit`, or ``None`` for no limit."""
    return None if limit is None else check_limit(limit, what=what)


def check_text(what: str, value: object, *, maximum: int | None = None) -> str:
    """A non-empty string (of at most ``maximum`` characters when given).

    Raises:
        InvalidArgumentError: An empty string or not a string (:class:`~engine.FieldLimitError`: a
            longer one).
    """
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{what} must be a non-empty string, got {value!r:.100}")
    if maximum is not None:
        check_length(what, value, maximum)
    return value


def check_repo(repo: object) -> str | None:
    """A repository scope: ``None``, or a non-empty string of at most :data:`~engine.PATH_MAX`
    characters (a work tree's root path).

    Raises:
        InvalidArgumentError: Anything else (:class:`~engine.FieldLimitError`: a longer one).
    """
    return None if repo is None else check_text("repo", repo, maximum=PATH_MAX)


def check_fact_scope(session_id: object, repo: object) -> None:
    """The scope of a fact listing: a session id and/or a repository (:func:`check_repo`), at least
    one of the two.

    Raises:
        InvalidArgumentError: Neither, or a bad one.
    """
    if session_id is None and repo is None:
        raise InvalidArgumentError("list facts of a session or of a repo (give one)")
    if session_id is not None:
        check_text("session_id", session_id)
    check_repo(repo)


def check_json(what: str, value: _T) -> _T:
    """``value`` unchanged if it can be stored as JSON.

    Raises:
        InvalidArgumentError: It cannot be serialised (the message says "JSON").
    """
    try:
        canonical_json(value)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{what} must be JSON-serialisable: {exc}") from None
    return value


def check_confidence(value: object) -> float:
    """A confidence: a number (not a ``bool``) within [0, 1].

    Raises:
        InvalidArgumentError: Anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise InvalidArgumentError(f"confidence must be within [0, 1], got {value!r}")
    return float(value)


def check_invalidate_filters(
    key: str | None, model: str | None, older_than: float | None
) -> tuple[str | None, str | None, float | None]:
    """The filters of a generation-cache invalidation: at least one, and an age of seconds >= 0.

    Raises:
        InvalidArgumentError: No filter, or a bad age.
    """
    if key is None and model is None and older_than is None:
        raise InvalidArgumentError("give at least one of key, model, older_than")
    age = None if older_than is None else check_seconds("older_than", older_than, allow_zero=True)
    return key, model, age
