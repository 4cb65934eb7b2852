"""The metric history's store in memory: :class:`engine.MetricStore` over a dict of minutes."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import final

import trio

from .. import MinuteRollup, check_series_names

__all__ = ["InMemoryMetricStore"]


@final
class InMemoryMetricStore:
    """Minute roll-ups in memory (implements :class:`engine.MetricStore`). Each call checks for
    cancellation first and then runs without yielding: a cancelled call changed nothing."""

    def __init__(self) -> None:
        self.rows: dict[float, MinuteRollup] = {}

    async def put_minutes(self, minutes: Sequence[MinuteRollup]) -> None:
        """Store roll-ups, replacing any of the same minute.

        Cancellation: nothing is stored.
        """
        await trio.lowlevel.checkpoint()
        for m in minutes:
            self.rows[m.minute] = m

    async def minutes(
        self, names: Collection[str], since: float, until: float
    ) -> list[MinuteRollup]:
        """The roll-ups of minutes in ``[since, until)`` with only ``names``, oldest first.

        Raises:
            InvalidArgumentError: a name is no series, or there are too many.

        Cancellation: nothing is returned.
        """
        wanted = set(check_series_names(names))
        await trio.lowlevel.checkpoint()
        return [
            MinuteRollup(m.minute, {n: v for n, v in m.series.items() if n in wanted}, m.samples)
            for _, m in sorted(self.rows.items())
            if since <= m.minute < until
        ]

    async def sweep(self, before: float, *, max_rows: int) -> int:
        """Delete minutes before ``before`` and the oldest past ``max_rows``.

        Cancellation: nothing is deleted.
        """
        await trio.lowlevel.checkpoint()
        old = sorted(k for k in self.rows if k < before)
        keep = sorted(k for k in self.rows if k >= before)
        old += keep[: max(0, len(keep) - max_rows)]
        for k in old:
            del self.rows[k]
        return len(old)
