"""Time and argument rules of the in-memory memory store: the clock rows expire by, and the checks
its calls make (the same values the PostgreSQL store refuses, with the same error)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, final

from .. import InvalidArgumentError, canonical_json

__all__ = ["MemoryClock", "check_limit", "check_text", "check_ttl", "stored_json"]


@final
class MemoryClock:
    """ "Now" for memory rows, and whether an expiry has passed (a row is live while its expiry is
    later than now; ``None`` never expires)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.seconds = clock

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        return datetime.fromtimestamp(self.seconds(), UTC)

    def expiry(self, ttl: float | None) -> datetime | None:
        """When a row written now with ``ttl`` seconds to live expires (None: never)."""
        return None if ttl is None else datetime.fromtimestamp(self.seconds() + ttl, UTC)

    def live(self, expires_at: datetime | None) -> bool:
        """Whether a row with that expiry is still returned."""
        return expires_at is None or expires_at > self.now()


def check_text(what: str, value: object) -> str:
    """A non-empty string, else :class:`InvalidArgumentError`."""
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{what} must be a non-empty string, got {value!r}")
    return value


def check_limit(limit: object) -> int:
    """A positive int (not a bool), else :class:`InvalidArgumentError`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgumentError(f"limit must be a positive int, got {limit!r}")
    return limit


def check_ttl(ttl: object) -> float | None:
    """Positive seconds (not a bool) or None, else :class:`InvalidArgumentError`."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
        raise InvalidArgumentError(f"ttl must be positive seconds or None, got {ttl!r}")
    return float(ttl)


def stored_json(what: str, value: Any) -> Any:
    """``value`` as it reads back from a JSON column (a copy), else :class:`InvalidArgumentError`."""
    try:
        return json.loads(canonical_json(value))
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{what} must be JSON-serialisable: {exc}") from None
