"""Conversation memory in PostgreSQL: the :class:`engine.MemoryStore` implementation.

Tables come from ``migrations/0100_memory.sql``. Every read filters ``expires_at > now()``, so an
expired row is never returned whether or not :meth:`PostgresMemoryStore.sweep_expired` has deleted
it yet. The store is one class made of one part per record family, each in its own module:
messages (:mod:`._memory_messages`), facts (:mod:`._memory_facts`), decisions
(:mod:`._memory_decisions`), preferences and the retrieval cache (:mod:`._memory_preferences`),
over the ranked search and embeddings they share (:mod:`._memory_ranking`). The parts are mixins
of one base rather than objects the store forwards to, so each call is written and documented
once, where its SQL is.
"""

from __future__ import annotations

from typing import Any, Final, final

import psycopg
import trio
from psycopg import sql

from engine import (
    RETAINED_DECISIONS,
    RETAINED_MESSAGES,
    Embedder,
    InvalidArgumentError,
    MemoryRetention,
    SweepReport,
    VectorStatus,
)

from ._database import Database
from ._memory_decisions import MemoryDecisions
from ._memory_facts import MemoryFacts
from ._memory_messages import MemoryMessages
from ._memory_preferences import MemoryPreferences, MemoryRetrievalCache
from ._memory_prewarm import prewarm_memory
from ._memory_vector_index import (
    MIN_INDEXED_ROWS,
    ensure_vector_indexes,
    prewarm_vector_indexes,
)
from ._table_statistics import TableStatistics
from ._trigram_indexes import fit_trigram_indexes

__all__ = ["PostgresMemoryStore", "create_memory_store"]

# Every table with an ``expires_at`` column, swept by :meth:`PostgresMemoryStore.sweep_expired`.
_SWEPT = (
    "memory_messages",
    "memory_context_facts",
    "memory_decisions",
    "memory_preferences",
    "memory_retrieval_cache",
    "memory_generation_cache",
)


@final
class PostgresMemoryStore(
    MemoryMessages, MemoryFacts, MemoryDecisions, MemoryPreferences, MemoryRetrievalCache
):
    """:class:`engine.MemoryStore` over a :class:`Database` (get one from :func:`create_memory_store`).

    Every call is one statement or one transaction, admitted through the database's priority gate.
    Cancellation of any call: the statement is cancelled on the server and its transaction rolled
    back; nothing is half-written.
    """

    async def ensure_vector_indexes(self) -> list[str]:
        """Make the IVFFlat indexes of the embedder's model fit the tables' rows: built once a
        table has enough rows, built again as it grows (see :mod:`._memory_vector_index`);
        answers the names of those built (none without pgvector or an embedder).

        Cancellation: the build under way is cancelled on the server; the next call builds it.
        """
        if self.vector_status is not VectorStatus.USED:
            await trio.lowlevel.checkpoint()
            return []
        assert self._embedder is not None
        return await ensure_vector_indexes(
            self._db,
            self._embedder.model,
            self._embedder.dimensions,
            min_rows=self._vector_index_min_rows,
        )

    async def prewarm(self) -> int:
        """Load what searches read into the server's buffer cache: the embedder's vector indexes,
        the full-text indexes, the newest rows (see :mod:`._memory_prewarm`); answers the 8 kB
        blocks loaded.

        Cancellation: the load is cancelled on the server; what it loaded stays cached.
        """
        embedder = self._embedder if self.vector_status is VectorStatus.USED else None
        if embedder is None:
            return await prewarm_memory(self._db, None, None)
        return await prewarm_memory(self._db, embedder.model, embedder.dimensions)

    async def fit_trigram_indexes(self) -> list[str]:
        """Drop the trigram indexes of a table too big for the trigram ranking, build those of one
        small enough for it again (see :mod:`._trigram_indexes`); answers what it did.

        Cancellation: the statement running is cancelled on the server; the next call goes on.
        """
        return await fit_trigram_indexes(self._db, self._statistics.trigram_max_rows)

    async def prewarm_vector_indexes(self) -> int:
        """Load the embedder's vector indexes into the server's buffer cache (``pg_prewarm``, when
        the database has it); answers the 8 kB blocks loaded.

        Cancellation: the load is cancelled on the server; what it loaded stays cached.
        """
        if self.vector_status is not VectorStatus.USED:
            await trio.lowlevel.checkpoint()
            return 0
        assert self._embedder is not None
        return await prewarm_vector_indexes(
            self._db, self._embedder.model, self._embedder.dimensions
        )

    async def sweep_expired(self, retention: MemoryRetention | None = None) -> SweepReport:
        """Delete expired rows from every memory table (one transaction), then, with
        ``retention``, the messages written and the decisions superseded longer ago than it
        keeps them, ``retention.batch`` rows a transaction until none is left (so the sweep never
        holds many row locks at once, and what it deleted before a cancellation stays deleted).
        Last, the trigram indexes are fitted to the tables' sizes (:meth:`fit_trigram_indexes`).

        Cancellation: the batch in progress is rolled back (nothing of it is deleted); earlier
        transactions of the sweep stay committed.
        """

        def work(conn: psycopg.Connection[Any]) -> SweepReport:
            deleted: dict[str, int] = {}
            for table in _SWEPT:
                cur = conn.execute(
                    sql.SQL("DELETE FROM {} WHERE expires_at <= now()").format(
                        sql.Identifier(table)
                    )
                )
                deleted[table] = cur.rowcount
            return SweepReport(deleted)

        report = await self._db.run_sync(work)
        if retention is None:
            await self.fit_trigram_indexes()  # the tables' sizes have changed
            return report
        deleted = dict(report.deleted)
        for key, statement, keep in (
            (RETAINED_MESSAGES, _RETAIN_MESSAGES, retention.messages),
            (RETAINED_DECISIONS, _RETAIN_SUPERSEDED, retention.superseded_decisions),
        ):
            deleted[key] = 0
            while keep is not None:
                n = await self._db.execute(statement, {"keep": keep, "batch": retention.batch})
                deleted[key] += n
                if n < retention.batch:
                    break
        await self.fit_trigram_indexes()
        return SweepReport(deleted)


# One batch of rows past their retention (the BRIN index on created_at and the partial index on
# superseded decisions' updated_at of migration 0104 find them).
_RETAIN_MESSAGES: Final = (
    "DELETE FROM memory_messages WHERE id IN (SELECT id FROM memory_messages"
    " WHERE created_at < now() - %(keep)s * interval '1 second' LIMIT %(batch)s)"
)
_RETAIN_SUPERSEDED: Final = (
    "DELETE FROM memory_decisions WHERE id IN (SELECT id FROM memory_decisions"
    " WHERE status = 'superseded' AND updated_at < now() - %(keep)s * interval '1 second'"
    " LIMIT %(batch)s)"
)


async def create_memory_store(
    db: Database,
    *,
    embedder: Embedder | None = None,
    min_vector_similarity: float = 0.0,
    statistics: TableStatistics | None = None,
    build_indexes: bool = True,
    vector_index_min_rows: int = MIN_INDEXED_ROWS,
) -> PostgresMemoryStore:
    """A memory store over ``db``, finding out whether the database has the vector columns.

    Vector search returns rows whose cosine similarity to the query is at least
    ``min_vector_similarity`` (tune it to the embedder: unrelated texts score near 0 with
    :class:`HashingEmbedder`, higher with many learned models). With :class:`WordLlamaEmbedder`
    keep it at 0 to 0.1: on the labelled set of ``tests/test_retrieval_quality.py`` a paraphrase
    and its target often score only 0.15 to 0.4, and 0.3 cost the hybrid 0.07 of recall@5.

    ``statistics`` decides, from the planner's statistics, which query words are too common for
    the full-text ranking and which tables are too big for the trigram ranking (see
    :mod:`._table_statistics`; default: :class:`TableStatistics` with its default limits).

    Without pgvector (or with ``scribe.memory_vector = 'off'`` at migration time), vector search
    reports :attr:`engine.VectorStatus.UNAVAILABLE` and everything else works.

    With vector columns and an embedder, the IVFFlat index of the embedder's model is made to fit
    each table (see :mod:`._memory_vector_index`; none below ``vector_index_min_rows`` rows),
    unless ``build_indexes`` is false: then :meth:`~PostgresMemoryStore.ensure_vector_indexes`
    does it when called (the daemon's background embedder does, now and then), and vector search
    scans exactly until an index exists.

    Cancellation: the probe query (or the index build) is cancelled; no store is made.
    """
    if embedder is not None and not isinstance(embedder, Embedder):
        raise InvalidArgumentError("embedder must implement engine.Embedder")
    has_vector = await db.fetchval(
        "SELECT count(*) = 2 FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND column_name = 'embedding' AND table_name IN ('memory_messages', 'memory_decisions')"
    )
    if not -1.0 <= min_vector_similarity <= 1.0:
        raise InvalidArgumentError("min_vector_similarity must be within [-1, 1]")
    if isinstance(vector_index_min_rows, bool) or not isinstance(vector_index_min_rows, int):
        raise InvalidArgumentError("vector_index_min_rows must be an int")
    if vector_index_min_rows < 0:
        raise InvalidArgumentError("vector_index_min_rows must be at least 0")
    store = PostgresMemoryStore(
        db,
        embedder=embedder,
        vector_columns=bool(has_vector),
        min_vector_similarity=min_vector_similarity,
        statistics=statistics,
        vector_index_min_rows=vector_index_min_rows,
    )
    if build_indexes:
        await store.fit_trigram_indexes()
        await store.ensure_vector_indexes()
    return store
