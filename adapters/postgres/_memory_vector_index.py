"""The HNSW index of one embedding model's vectors, and the SQL that must match it.

The ``embedding`` columns are untyped ``vector`` (rows of several models may coexist, each row
records its ``embedding_model``), so an index covers one model and dimension: a partial
expression index ``USING hnsw ((embedding::vector(N)) vector_cosine_ops) WHERE embedding_model =
'<model>' AND vector_dims(embedding) = N``. The planner uses it only for a query that repeats that
expression and predicate with literals (not parameters), ordering by the distance with a LIMIT:
:data:`VECTOR_PREDICATE` and :data:`VECTOR_DISTANCE` are those, shared with the vector ranking.

The index is created (``CREATE INDEX CONCURRENTLY IF NOT EXISTS``, without the statement timeout)
when a store opens, or, in the daemon, by its background embedder before it works off the backlog
(``create_memory_store(build_indexes=False)``; a build over a million existing rows takes many
minutes, which must not hold up the daemon's start nor a CLI command). The index is partial, so for
a model new to the database it is empty and made at once, and inserts keep it current from then on;
the one slow case is a database that already holds many rows of that model and no index, and there
the build does not block writers (it is concurrent) and searches keep working (by a scan) meanwhile.
An index left invalid by an interrupted build is dropped and built again; one that another
connection is building is left to it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final, LiteralString

from psycopg import sql

from ._database import Database

__all__ = [
    "VECTOR_DISTANCE",
    "VECTOR_PREDICATE",
    "ensure_vector_indexes",
    "prewarm_vector_indexes",
    "vector_index_name",
]

# {a}: the table's alias; {model}, {dims}: literals; %(vec)s: the query vector's text.
VECTOR_PREDICATE: Final[LiteralString] = (
    "{a}.embedding_model = {model} AND vector_dims({a}.embedding) = {dims}"
)
VECTOR_DISTANCE: Final[LiteralString] = "{a}.embedding::vector({dims}) <=> %(vec)s::vector({dims})"

_TABLES: Final = ("memory_messages", "memory_decisions")
_UNSAFE: Final = re.compile(r"[^a-z0-9]+")


def vector_index_name(table: str, model: str, dims: int) -> str:
    """The index name of ``table``'s vectors of ``model`` with ``dims`` dimensions (at most 63
    characters: a readable prefix of the model and a digest of the whole name)."""
    digest = hashlib.sha256(f"{model}\0{dims}".encode()).hexdigest()[:8]
    readable = _UNSAFE.sub("_", model.lower()).strip("_")[:20]
    short = {"memory_messages": "msg", "memory_decisions": "dec"}.get(table, table[:12])
    return f"memory_{short}_hnsw_{readable}_{dims}_{digest}"


async def _index_valid(db: Database, name: str) -> bool | None:
    """Whether index ``name`` of this schema is valid (None: there is no such index)."""
    valid = await db.fetchval(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
        (name,),
    )
    return None if valid is None else bool(valid)


async def _being_built(db: Database, name: str) -> bool:
    """Whether a ``CREATE INDEX`` of index ``name`` is running on some connection (an invalid
    index is either being built or left by a build that failed)."""
    return bool(
        await db.fetchval(
            "SELECT count(*) > 0 FROM pg_stat_progress_create_index p"
            " JOIN pg_class c ON c.oid = p.index_relid WHERE c.relname = %s",
            (name,),
        )
    )


async def ensure_vector_indexes(db: Database, model: str, dims: int) -> list[str]:
    """Create (concurrently, if missing or invalid) the HNSW index of each memory table's vectors
    of ``model`` and ``dims``; answers the names of the indexes it built.

    An invalid index that another connection is building (another process opening a store at
    the same time) is left to that build, not waited for: searches meanwhile scan exactly. One
    that no connection is building was left by a failed or cancelled build: it is dropped and built
    again.

    Cancellation: the build running is cancelled on the server; a concurrent build cancelled
    midway leaves an invalid index, which the next call drops and builds again.
    """
    built = []
    for table in _TABLES:
        name = vector_index_name(table, model, dims)
        valid = await _index_valid(db, name)
        if valid:
            continue
        if valid is not None and await _being_built(db, name):
            continue  # another connection is building it; searches scan exactly meanwhile
        if valid is not None:
            await db.execute_unbounded(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name))
            )
        predicate: LiteralString = VECTOR_PREDICATE.replace("{a}.", "")
        await db.execute_unbounded(
            sql.SQL(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table}"
                " USING hnsw ((embedding::vector({dims})) vector_cosine_ops) WHERE " + predicate
            ).format(
                name=sql.Identifier(name),
                table=sql.Identifier(table),
                model=sql.Literal(model),
                dims=sql.Literal(dims),
            )
        )
        built.append(name)
    return built


async def prewarm_vector_indexes(db: Database, model: str, dims: int) -> int:
    """Load the valid HNSW indexes of ``model`` into the server's buffer cache with ``pg_prewarm``
    (when the database has it; migration 0105); answers the 8 kB blocks loaded (0 without it).

    A vector search walks the graph from the top: after a restart each search reads index pages
    no search read yet, from the kernel's cache or the disk (measured at a million messages: a
    session-scoped search 60-190 ms cold against 26-50 ms cached). The daemon's background
    embedder calls this once it has made sure the indexes exist.

    Cancellation: the load is cancelled on the server; what it loaded stays cached.
    """
    if not await db.fetchval("SELECT count(*) > 0 FROM pg_extension WHERE extname = 'pg_prewarm'"):
        return 0
    blocks = 0
    for table in _TABLES:
        name = vector_index_name(table, model, dims)
        valid = await _index_valid(db, name)
        if valid:
            blocks += int(await db.fetchval("SELECT pg_prewarm(%s::regclass)", (name,)))
    return blocks
