"""The embedding backlog, worked off in the background: rows without a vector of the current model.

A message imported from a transcript is stored at once without a vector
(``add_messages(..., embed=False)``), so an import is never held up by the embedder. The backlog is
every live message and decision whose ``embedding_model`` is not the configured embedder's model:
rows stored without a vector (``embedding_model`` NULL) and rows embedded by another model (the
configuration changed). :class:`EmbeddingBackfill` takes the newest ``batch_size`` rows of the
backlog, embeds them (the embedder works in its own bounded worker threads), and writes the
vectors and the model in one statement; then the next batch, until none is left, then it waits
``interval`` seconds and looks again. A text the embedder gives no direction (all zeros) is stored
with the model and no vector, so it leaves the backlog too.

**Search while the backlog drains.** The vector ranking compares only vectors of the current model
(``embedding_model`` = the embedder's model, of its dimensions): rows not yet (re-)embedded are
found by full text and trigram only, exactly as before they had a vector, and the vector ranking
covers more rows as the backlog drains. After a change of model, the old model's vectors are never
compared with the new model's query vector; they are replaced row by row.

Cancellation of a batch leaves nothing half-done: the vectors are computed before the one
``UPDATE`` that stores them, and a cancelled ``UPDATE`` is rolled back. Without pgvector (or
without an embedder) there is nothing to do: :meth:`EmbeddingBackfill.run` logs so once and waits.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Final, LiteralString, final

import trio

from engine import InvalidArgumentError, VectorStatus

from ._memory_store import PostgresMemoryStore
from ._vector_batch import float4_array

__all__ = ["BackfillStatistics", "EmbeddingBackfill"]

_log = logging.getLogger(__name__)

#: table -> the text its rows are embedded from (as the store embeds them inline).
_TABLES: Final[dict[LiteralString, LiteralString]] = {
    "memory_messages": "content",
    "memory_decisions": "title || E'\\n' || body",
}
# "Another model" is written as two ranges, not ``<>``, so that the btree index on
# embedding_model (migration 0103) finds those rows: a ``<>`` is no index condition, and each idle
# look at the backlog scanned the whole table (0.3 s at 100,000 rows, every few seconds).
_OTHER_MODEL: Final = "(embedding_model < %(model)s OR embedding_model > %(model)s)"


def backlog_count_sql(table: LiteralString) -> LiteralString:
    """The statement counting ``table``'s live rows awaiting a vector of ``%(model)s``."""
    return (
        "SELECT count(*) FROM " + table + " WHERE expires_at > now()"
        " AND (embedding_model IS NULL OR " + _OTHER_MODEL + ")"
    )


def backlog_batch_sql(table: LiteralString, text: LiteralString) -> LiteralString:
    """The statement taking the newest ``%(lim)s`` rows of ``table``'s backlog and their text."""
    return (
        "SELECT id, txt FROM ("
        "(SELECT id, " + text + " AS txt FROM " + table + " WHERE embedding_model IS NULL"
        " AND expires_at > now() ORDER BY id DESC LIMIT %(lim)s)"
        " UNION ALL (SELECT id, " + text + " AS txt FROM " + table + " WHERE " + _OTHER_MODEL
        + " AND expires_at > now() ORDER BY id DESC LIMIT %(lim)s)"
        ") x ORDER BY id DESC LIMIT %(lim)s"
    )


#: Batches between two counts of the backlog while it drains.
RECOUNT_EVERY: Final = 20
#: Seconds between two looks at whether the vector indexes fit the tables' rows.
INDEX_CHECK_INTERVAL: Final = 60.0


@dataclass(frozen=True, slots=True)
class BackfillStatistics:
    """A snapshot of the background embedder.

    Attributes:
        state: ``idle`` (no backlog), ``indexing`` (making the model's vector indexes fit, before
            the first backlog), ``embedding``, ``unavailable`` (no pgvector or no embedder:
            nothing is embedded) or ``failing`` (the last batch raised; retried after
            ``interval``).
        model: the model rows are embedded with (None: no embedder).
        backlog: live rows awaiting a vector of ``model`` at the last count (messages and
            decisions; None: not counted yet).
        embedded: rows given a vector since the service started.
        batches: batches stored since the service started.
        errors: batches that failed.
        last_error: the last failure's message.
    """

    state: str = "idle"
    model: str | None = None
    backlog: int | None = None
    embedded: int = 0
    batches: int = 0
    errors: int = 0
    last_error: str | None = None


@final
class EmbeddingBackfill:
    """Embeds the memory store's backlog in bounded batches, newest first.

    Args:
        store: the memory store (its embedder and database).
        batch_size: rows embedded and stored per batch (1-4096; None: 256).
        interval: seconds between two looks at an empty backlog (or after a failure).

    Raises:
        InvalidArgumentError: an argument is out of range.
    """

    def __init__(
        self, store: PostgresMemoryStore, *, batch_size: int | None = None, interval: float = 2.0
    ) -> None:
        batch_size = 256 if batch_size is None else batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise InvalidArgumentError("batch_size must be an int")
        if not 1 <= batch_size <= 4096:
            raise InvalidArgumentError("batch_size must be within 1..4096")
        if not isinstance(interval, int | float) or not 0 < interval <= 3600:
            raise InvalidArgumentError("interval must be within (0, 3600] seconds")
        self._store = store
        self._batch = batch_size
        self._interval = float(interval)
        self._indexes_checked: float | None = None
        embedder = store.embedder
        self._stats = BackfillStatistics(
            state="idle" if self.available else "unavailable",
            model=None if embedder is None else embedder.model,
        )

    @property
    def available(self) -> bool:
        """Whether there is anything this can do (pgvector and an embedder)."""
        return self._store.vector_status is VectorStatus.USED

    def statistics(self) -> BackfillStatistics:
        """The current snapshot."""
        return self._stats

    def _update(self, **changes: object) -> None:
        self._stats = dataclasses.replace(self._stats, **changes)  # type: ignore[arg-type]

    async def count_backlog(self) -> int:
        """Count the live rows awaiting a vector of the current model (0 when unavailable).

        Cancellation: the query is cancelled; the count kept is the previous one.
        """
        if not self.available:
            await trio.lowlevel.checkpoint()
            return 0
        total = 0
        for table in _TABLES:
            total += int(
                await self._store.database.fetchval(
                    backlog_count_sql(table), {"model": self._stats.model}
                )
            )
        self._update(backlog=total)
        return total

    async def embed_batch(self) -> int:
        """Embed and store the newest batch of each table's backlog; answers the rows stored.

        Raises:
            EmbeddingError: the embedder failed or answered wrong vectors (nothing is stored).
            DatabaseError: the database failed.

        Cancellation: nothing of the batch under way is stored.
        """
        if not self.available:
            await trio.lowlevel.checkpoint()
            return 0
        done = 0
        for table, text in _TABLES.items():
            done += await self._embed_table(table, text)
        if done:
            backlog = self._stats.backlog
            self._update(
                state="embedding",
                embedded=self._stats.embedded + done,
                batches=self._stats.batches + 1,
                backlog=None if backlog is None else max(0, backlog - done),
            )
        return done

    async def _embed_table(self, table: LiteralString, text: LiteralString) -> int:
        db = self._store.database
        params = {"model": self._stats.model, "lim": self._batch}
        rows = await db.fetch(backlog_batch_sql(table, text), params)
        if not rows:
            return 0
        batch = await self._store._embed_batch([r["txt"] for r in rows])
        assert batch is not None
        matrix, has = batch
        # One binary real[] for the batch, each row its slice, as add_messages sends them.
        await db.execute(
            "UPDATE " + table + " t SET embedding = CASE WHEN u.has THEN (%(embs)s::float4[])"
            "[(u.ord - 1) * %(dims)s + 1 : u.ord * %(dims)s]::vector END,"
            " embedding_model = %(model)s FROM unnest(%(ids)s::bigint[], %(has)s::bool[])"
            " WITH ORDINALITY AS u(id, has, ord) WHERE t.id = u.id",
            {
                "model": params["model"],
                "ids": [r["id"] for r in rows],
                "has": has,
                "embs": float4_array(matrix),
                "dims": matrix.shape[1],
            },
        )
        return len(rows)

    async def drain(self) -> int:
        """Embed batch after batch until the backlog is empty, recounting it (and fitting the
        vector indexes to the grown tables) every :data:`RECOUNT_EVERY` batches and once at the
        end; answers the rows stored.

        Cancellation: what the batches before stored stays; the batch under way stores nothing.
        """
        total = batches = 0
        while n := await self.embed_batch():
            total += n
            batches += 1
            if batches % RECOUNT_EVERY == 0:
                await self.count_backlog()
                await self._fit_indexes()  # a long backlog grows the tables
        await self.count_backlog()
        return total

    async def _fit_indexes(self) -> None:
        """Make the model's vector indexes fit the tables (at the first call, then at most every
        :data:`INDEX_CHECK_INTERVAL` seconds), and load what it built into the server's cache."""
        checked = self._indexes_checked
        first = checked is None
        if checked is not None and trio.current_time() - checked < INDEX_CHECK_INTERVAL:
            return
        if first:
            self._update(state="indexing")
        built = await self._store.ensure_vector_indexes()
        if built:
            _log.info("built the vector indexes %s", ", ".join(built))
        if first or built:
            # into the buffer cache, so the first searches after a start are fast
            blocks = await self._store.prewarm()
            if blocks >= 128:  # a megabyte or more
                _log.info("loaded %d MB of memory into the cache", blocks // 128)
        self._indexes_checked = trio.current_time()

    async def look_once(self) -> int:
        """One look of the service: make the vector indexes fit the tables when that is due,
        count the backlog and, only if there is one, :meth:`drain` it. Answers the rows stored.
        An idle look (no backlog) is one count per table and nothing more.

        Raises:
            EmbeddingError: the embedder failed (what earlier batches stored stays).
            DatabaseError: the database failed.

        Cancellation: what the batches before stored stays; the batch under way stores nothing.
        """
        await self._fit_indexes()
        stored = await self.drain() if await self.count_backlog() else 0
        self._update(state="idle")
        return stored

    async def run(self) -> None:
        """The service: make the model's vector indexes fit the tables
        (:meth:`PostgresMemoryStore.ensure_vector_indexes`; again every
        :data:`INDEX_CHECK_INTERVAL` seconds, as they grow) and load them into the server's cache
        (:meth:`PostgresMemoryStore.prewarm`), then count the backlog and drain it when there is
        one (:meth:`look_once`), wait ``interval``, again, until cancelled. A failed build or
        batch is counted, logged and tried again after ``interval``.

        Cancellation: stops; the batch under way stores nothing.
        """
        if not self.available:
            _log.info(
                "background embedding is off: %s",
                "the database has no pgvector"
                if self._store.vector_status is VectorStatus.UNAVAILABLE
                else "no embedder is configured",
            )
            await trio.sleep_forever()
        while True:
            try:
                await self.look_once()
            except Exception as exc:  # logged and retried; a cancellation is never caught here
                _log.warning("background embedding failed: %s", exc)
                self._update(
                    state="failing", errors=self._stats.errors + 1, last_error=str(exc)[:500]
                )
            await trio.sleep(self._interval)
