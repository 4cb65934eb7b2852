"""The metric history's storage port: one-minute roll-ups kept for days (PostgreSQL in ``adapters``,
in memory in ``engine.testing``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from .._core._metric_ring import MinuteRollup

__all__ = ["MetricStore"]


class MetricStore(Protocol):
    """Where the sampler's minute roll-ups are kept. Every call raises a :class:`ScribeError`
    subclass when the storage fails."""

    async def put_minutes(self, minutes: Sequence[MinuteRollup]) -> None:
        """Store roll-ups (one already stored for the same minute is replaced).

        Cancellation: nothing of the call is stored.
        """
        ...

    async def minutes(
        self, names: Collection[str], since: float, until: float
    ) -> list[MinuteRollup]:
        """The roll-ups whose minute starts in ``[since, until)`` (wall-clock seconds), oldest
        first, carrying only the series in ``names``.

        Cancellation: the read is abandoned.
        """
        ...

    async def sweep(self, before: float, *, max_rows: int) -> int:
        """Delete the roll-ups of minutes before ``before``, and the oldest past the newest
        ``max_rows``; return how many were deleted.

        Cancellation: the batch in progress is not deleted.
        """
        ...
