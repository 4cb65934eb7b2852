"""The clock the in-memory memory store's rows expire by, and what a JSON column gives back.

Arguments are checked with the engine's shared store rules (:mod:`engine._ports._validation`), as
the PostgreSQL store checks them."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, final

from .. import canonical_json, check_json

__all__ = ["MemoryClock", "stored_json"]


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


def stored_json(what: str, value: Any) -> Any:
    """``value`` as it reads back from a JSON column (a copy); :func:`engine.check_json` refuses
    what no JSON column can hold."""
    return json.loads(canonical_json(check_json(what, value)))
