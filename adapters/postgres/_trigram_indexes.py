"""The trigram indexes of the memory tables, kept while a table is small enough to be ranked by
trigrams.

A table estimated to hold more than the store's ``trigram_max_rows`` (:mod:`._table_statistics`)
is searched without the trigram ranking, and then its trigram GIN indexes serve no search while
every insert still adds each of its row's trigrams to them: measured at a million messages, a
batch of 500 stored in 0.24 s with the index against 0.17 s without (and the index is a fifth of
the table's disk). So :func:`fit_trigram_indexes` drops a table's trigram indexes once it holds
twice the rows the ranking allows, and builds them again once it is back within them (a
retention sweep can shrink it); in between they are left as they are, so a table near the limit
is not built and dropped by turns. Both are done concurrently: writers are not blocked and
searches keep working. The daemon's memory sweeper calls it after each sweep, and a store opened
with ``build_indexes`` at its opening.
"""

from __future__ import annotations

from typing import Final, LiteralString

from psycopg import sql

from ._database import Database
from ._memory_vector_index import drop_index

__all__ = ["TRIGRAM_INDEXES", "fit_trigram_indexes"]

#: Each trigram index: its table and its definition (as the migrations make it).
TRIGRAM_INDEXES: Final[dict[str, tuple[LiteralString, LiteralString]]] = {
    "memory_messages_trgm": ("memory_messages", "USING gin (content gin_trgm_ops)"),
    "memory_decisions_trgm": ("memory_decisions", "USING gin (search_text gin_trgm_ops)"),
    "memory_decisions_live_trgm": (
        "memory_decisions",
        "USING gin (search_text gin_trgm_ops) WHERE status <> 'superseded'",
    ),
}
_SLACK: Final = 2  # dropped past this many times the rows the ranking allows


async def fit_trigram_indexes(db: Database, max_rows: int | None) -> list[str]:
    """Drop the trigram indexes of a table estimated to hold more than twice ``max_rows`` rows,
    build those of a table within ``max_rows`` that lacks them (or has them invalid, left by an
    interrupted build); answers what it did (``"dropped <name>"``, ``"built <name>"``). With
    ``max_rows`` None every table keeps its trigram indexes.

    Cancellation: the statement running is cancelled on the server; a concurrent build cancelled
    midway leaves an invalid index, which the next call drops and builds again.
    """
    done = []
    states = {
        r["name"]: (r["valid"], r["building"])
        for r in await db.fetch(
            "SELECT c.relname AS name, i.indisvalid AS valid, EXISTS (SELECT 1 FROM"
            " pg_stat_progress_create_index p WHERE p.index_relid = c.oid) AS building"
            " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = ANY(%s) AND c.relnamespace = current_schema()::regnamespace",
            (list(TRIGRAM_INDEXES),),
        )
    }
    rows = {
        r["t"]: float(r["n"])
        for r in await db.fetch(
            "SELECT t, greatest(coalesce((SELECT reltuples FROM pg_class WHERE oid ="
            " to_regclass(t)), 0), 0) AS n FROM unnest(%s::text[]) AS t",
            (sorted({table for table, _ in TRIGRAM_INDEXES.values()}),),
        )
    }
    for name, (table, definition) in TRIGRAM_INDEXES.items():
        valid, building = states.get(name, (None, False))
        if building:
            continue  # another connection is building it
        if max_rows is not None and rows[table] > _SLACK * max_rows:
            if valid is not None:
                await drop_index(db, name)
                done.append(f"dropped {name}")
            continue
        if valid or (max_rows is not None and rows[table] > max_rows):
            continue
        if valid is not None:  # invalid: an interrupted build
            await drop_index(db, name)
        await db.execute_unbounded(
            sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} " + definition).format(
                sql.Identifier(name), sql.Identifier(table)
            )
        )
        done.append(f"built {name}")
    return done
