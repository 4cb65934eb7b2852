"""The metric history's minutes in PostgreSQL (table ``metric_minutes``, migration 0300).

One row per minute and daemon: each series' ``[mean, peak]`` in one JSON object. Reads pick the
series asked for on the server; sweeps delete in bounded batches.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Final, final

from psycopg.types.json import Jsonb

from engine import InvalidArgumentError, MinuteRollup, check_series_names

from ._database import Database

__all__ = ["PostgresMetricStore"]

#: The most rows one statement of a sweep deletes.
SWEEP_BATCH: Final = 5000


@final
class PostgresMetricStore:
    """:class:`engine.MetricStore` over a :class:`Database`.

    Args:
        db: the database (its migrations applied).
        daemon: whose minutes these are (several daemons may share a database).

    Every call raises :class:`~adapters.DatabaseError` subclasses when the database fails.
    """

    def __init__(self, db: Database, *, daemon: str = "") -> None:
        if not isinstance(daemon, str) or len(daemon) > 200:
            raise InvalidArgumentError("daemon must be a string of at most 200 characters")
        self._db = db
        self._daemon = daemon

    async def put_minutes(self, minutes: Sequence[MinuteRollup]) -> None:
        """Store roll-ups (one of the same minute is replaced), in one statement.

        Cancellation: the statement is cancelled; nothing is stored.
        """
        if not minutes:
            return
        rows = [
            {
                "minute": m.minute,
                "samples": m.samples,
                "series": {k: list(v) for k, v in m.series.items()},
            }
            for m in minutes
        ]
        await self._db.execute(
            "INSERT INTO metric_minutes (daemon, minute, samples, series)"
            " SELECT %(daemon)s, to_timestamp((r->>'minute')::float8), (r->>'samples')::int,"
            " r->'series' FROM jsonb_array_elements(%(rows)s) AS r"
            " ON CONFLICT (daemon, minute) DO UPDATE"
            " SET samples = excluded.samples, series = excluded.series",
            {"daemon": self._daemon, "rows": Jsonb(rows)},
        )

    async def minutes(
        self, names: Collection[str], since: float, until: float
    ) -> list[MinuteRollup]:
        """The roll-ups of minutes in ``[since, until)`` carrying only ``names``, oldest first.

        Raises:
            InvalidArgumentError: more than :data:`engine.MAX_SERIES_PER_QUERY` names, or a name that is no series.

        Cancellation: the query is cancelled.
        """
        wanted = check_series_names(names)
        rows = await self._db.fetch(
            "SELECT extract(epoch FROM minute)::float8 AS minute, samples,"
            " coalesce((SELECT jsonb_object_agg(key, value) FROM jsonb_each(series)"
            "           WHERE key = ANY(%(names)s)), '{}'::jsonb) AS series"
            " FROM metric_minutes WHERE daemon = %(daemon)s"
            " AND minute >= to_timestamp(%(since)s) AND minute < to_timestamp(%(until)s)"
            " ORDER BY minute",
            {"daemon": self._daemon, "names": wanted, "since": since, "until": until},
        )
        return [
            MinuteRollup(
                float(row["minute"]),
                {k: (float(v[0]), float(v[1])) for k, v in row["series"].items()},
                int(row["samples"]),
            )
            for row in rows
        ]

    async def sweep(self, before: float, *, max_rows: int) -> int:
        """Delete the minutes before ``before``, then the oldest past the newest ``max_rows``, in
        batches of :data:`SWEEP_BATCH` rows.

        Cancellation: the batch in progress is not deleted; earlier batches stay deleted.
        """
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise InvalidArgumentError(f"max_rows must be an int >= 1, not {max_rows!r}")
        deleted = 0
        while True:
            n = await self._db.execute(
                "DELETE FROM metric_minutes WHERE ctid IN (SELECT ctid FROM metric_minutes"
                " WHERE daemon = %(daemon)s AND (minute < to_timestamp(%(before)s) OR minute <"
                " (SELECT minute FROM metric_minutes WHERE daemon = %(daemon)s"
                "  ORDER BY minute DESC OFFSET %(keep)s LIMIT 1)) LIMIT %(batch)s)",
                {
                    "daemon": self._daemon,
                    "before": before,
                    "keep": max_rows - 1,
                    "batch": SWEEP_BATCH,
                },
            )
            deleted += n
            if n < SWEEP_BATCH:
                return deleted
