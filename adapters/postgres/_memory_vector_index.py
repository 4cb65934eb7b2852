"""The IVFFlat index of one embedding model's vectors, and the SQL that must match it.

The ``embedding`` columns are untyped ``vector`` (rows of several models may coexist, each row
records its ``embedding_model``), so an index covers one model and dimension: a partial
expression index ``USING ivfflat ((embedding::halfvec(N)) halfvec_cosine_ops) WITH (lists = L)
WHERE embedding_model = '<model>' AND vector_dims(embedding) = N``. The planner uses it only for a
query that repeats that expression and predicate with literals (not parameters), ordering by the
distance with a LIMIT: :data:`VECTOR_PREDICATE` and :data:`VECTOR_DISTANCE` are those, shared with
the vector ranking.

**Why IVFFlat, not HNSW.** Measured at a million messages on two cores: each insert into an HNSW
graph of that size costs about 3.4 ms (2,000 rows in 6.9 s), which caps ingest near 290 messages/s
whatever else is done; the same rows into an IVFFlat index of 1,000 lists take 0.53 s (about
3,750/s), as an insert only finds its nearest list. The index builds in one or two minutes where
HNSW took twelve.

**Half precision.** The index holds each vector as ``halfvec`` (2 bytes a dimension): a search
reads every vector of the lists it probes, and half the bytes made it 25-30% faster (measured at
a million messages: a repository-scoped search of 6% of the lists 24.8 ms at the median against
33.8 ms in single precision) with as many of the exact nearest rows found; the index is half the
size (543 MB against 1,159 MB). The rows keep their vectors in single precision.

**Lists and probes.** An index has :func:`lists_for` its rows (a thousand rows a list up to a
million rows, the square root of the rows beyond: pgvector's advice), and a search probes
:func:`probes_for` its lists (6%), scanning further lists (``ivfflat.iterative_scan``, up to
four times as many) while a session or repository filter leaves the LIMIT unfilled. Measured at a
million messages against an exact search: 6% of the lists find 0.45 of a session's 20 nearest
rows and 0.56 of a repository's (HNSW at its defaults found 0.62 and 0.52); 8% find 0.51 and
0.63 and take half as long again. A table with fewer than :data:`MIN_INDEXED_ROWS` rows has no
index: an exact scan of so few is fast and exact, and the k-means of an IVFFlat build needs rows
to place its lists. Lists are placed from the rows present at the build, so when the table has
grown to twice the rows its lists were made for, :func:`ensure_vector_indexes` builds a new index
beside the old one (searches keep using the old one meanwhile) and drops the old one once the new
one is valid; the HNSW index of an earlier version of the store goes the same way.

Builds are ``CREATE INDEX CONCURRENTLY`` without the statement timeout, made when a store opens
or, in the daemon, by its background embedder, which looks again every few seconds
(``create_memory_store(build_indexes=False)``; a build over a million rows takes a minute or two,
which must not hold up the daemon's start nor a CLI command). The build does not block writers and
searches keep working meanwhile. An index left invalid by an interrupted build is dropped and built
again; one that another connection is building is left to it.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Final, LiteralString

import trio
from psycopg import sql

from ._database import Database

__all__ = [
    "MIN_INDEXED_ROWS",
    "VECTOR_DISTANCE",
    "VECTOR_PREDICATE",
    "VectorIndex",
    "VectorProbes",
    "drop_index",
    "ensure_vector_indexes",
    "has_prewarm",
    "lists_for",
    "prewarm_vector_indexes",
    "probes_for",
    "vector_index_name",
    "vector_indexes",
]

# {a}: the table's alias; {model}, {dims}: literals; %(vec)s: the query vector's text.
VECTOR_PREDICATE: Final[LiteralString] = (
    "{a}.embedding_model = {model} AND vector_dims({a}.embedding) = {dims}"
)
VECTOR_DISTANCE: Final[LiteralString] = (
    "{a}.embedding::halfvec({dims}) <=> %(vec)s::halfvec({dims})"
)

#: A table with fewer rows than this has no vector index (its searches scan exactly).
MIN_INDEXED_ROWS: Final = 10_000
#: The share of an index's lists a search probes first.
PROBE_SHARE: Final = 0.06
#: How many times the first probes an iterative scan may reach while a filter leaves rows wanting.
MAX_PROBE_FACTOR: Final = 4
_ROWS_PER_LIST: Final = 1_000
_GROWTH: Final = 2  # a new index once the rows' lists are twice the index's
_TABLES: Final = ("memory_messages", "memory_decisions")
_SHORT: Final = {"memory_messages": "msg", "memory_decisions": "dec"}
_UNSAFE: Final = re.compile(r"[^a-z0-9]+")
_TTL: Final = 60.0


def lists_for(rows: float) -> int:
    """The lists of an index over ``rows`` rows: a thousand rows a list up to a million rows, the
    square root of the rows beyond (pgvector's advice), at least 1."""
    if rows <= 1_000_000:
        return max(1, int(rows // _ROWS_PER_LIST))
    return int(math.sqrt(rows))


def probes_for(lists: int) -> int:
    """The lists a search of an index of ``lists`` lists probes first (6%, at least 1)."""
    return max(1, math.ceil(lists * PROBE_SHARE))


def _suffix(model: str, dims: int) -> str:
    digest = hashlib.sha256(f"{model}\0{dims}".encode()).hexdigest()[:8]
    readable = _UNSAFE.sub("_", model.lower()).strip("_")[:20]
    return f"_{readable}_{dims}_{digest}"


def vector_index_name(table: str, model: str, dims: int, lists: int) -> str:
    """The name of ``table``'s IVFFlat index of ``model``'s vectors with ``dims`` dimensions and
    ``lists`` lists (at most 63 characters: a readable prefix of the model and a digest of the
    whole name)."""
    return f"memory_{_SHORT.get(table, table[:12])}_ivf{lists}{_suffix(model, dims)}"


@dataclass(frozen=True, slots=True)
class VectorIndex:
    """One index of a model's vectors, as the catalogue describes it.

    Attributes:
        name: the index's name.
        method: ``ivfflat`` (or ``hnsw``, left by an earlier version of the store).
        valid: whether its build finished (an invalid one is being built or was interrupted).
        lists: an IVFFlat index's lists (0 for another method).
        building: whether a ``CREATE INDEX`` of it is running on some connection.
    """

    name: str
    method: str
    valid: bool
    lists: int
    building: bool


async def vector_indexes(db: Database, table: str, model: str, dims: int) -> list[VectorIndex]:
    """The indexes of ``table`` over ``model``'s vectors of ``dims`` dimensions (valid ones with
    the most lists first).

    Cancellation: the catalogue query is cancelled.
    """
    rows = await db.fetch(
        "SELECT c.relname AS name, am.amname AS method, i.indisvalid AS valid,"
        " coalesce((SELECT split_part(o, '=', 2)::int FROM unnest(c.reloptions) o"
        "  WHERE o LIKE 'lists=%%'), 0) AS lists,"
        " EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = c.oid)"
        "  AS building"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam"
        " WHERE i.indrelid = to_regclass(%s) AND c.relname LIKE %s AND right(c.relname, %s) = %s",
        (
            table,
            f"memory_{_SHORT.get(table, table[:12])}_%",
            len(_suffix(model, dims)),
            _suffix(model, dims),
        ),
    )
    found = [
        VectorIndex(r["name"], r["method"], bool(r["valid"]), int(r["lists"]), bool(r["building"]))
        for r in rows
    ]
    return sorted(found, key=lambda x: (not x.valid, x.method != "ivfflat", -x.lists))


async def _rows_of(db: Database, table: LiteralString, model: str, least: int) -> float:
    """The rows of ``table`` by the planner's estimate; counted (up to ``least``) when that is
    below ``least`` (a table never analysed yet estimates none)."""
    estimate = float(
        await db.fetchval(
            "SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = %s::regclass", (table,)
        )
        or 0.0
    )
    if estimate >= least:
        return estimate
    return float(
        await db.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM " + table + " WHERE embedding_model = %s"
            " LIMIT %s) x",
            (model, least),
        )
    )


async def drop_index(db: Database, name: str) -> None:
    """``DROP INDEX CONCURRENTLY IF EXISTS`` ``name``, without the statement timeout.

    Cancellation: the drop is cancelled on the server; the index stays (or is left invalid).
    """
    await db.execute_unbounded(
        sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name))
    )


async def ensure_vector_indexes(
    db: Database, model: str, dims: int, *, min_rows: int = MIN_INDEXED_ROWS
) -> list[str]:
    """Make each memory table's IVFFlat index of ``model``'s vectors fit its rows; answers the
    names of the indexes it built.

    A table with fewer than ``min_rows`` rows gets none. A table without a valid index, or whose
    rows need twice the lists of the one it has, gets a new one (built concurrently); once a table
    has a valid one, the others of the model are dropped (concurrently). An invalid index that
    another connection is building (another process opening a store at the same time) is left to
    that build, not waited for, and the table is left as it is meanwhile; one that no connection
    is building was left by a failed or cancelled build: it is dropped and built again.

    Cancellation: the build or drop running is cancelled on the server; a concurrent build
    cancelled midway leaves an invalid index, which the next call drops and builds again.
    """
    built = []
    for table in _TABLES:
        found = await vector_indexes(db, table, model, dims)
        if any(x.building for x in found):
            continue  # another connection is building one; searches use what is there meanwhile
        for stale in [x for x in found if not x.valid]:
            await drop_index(db, stale.name)
        usable = [x for x in found if x.valid and x.method == "ivfflat"]
        rows = await _rows_of(db, table, model, min_rows)
        if rows >= min_rows:
            lists = lists_for(rows)
            if not usable or lists >= _GROWTH * usable[0].lists:
                name = vector_index_name(table, model, dims, lists)
                predicate: LiteralString = VECTOR_PREDICATE.replace("{a}.", "")
                await db.execute_unbounded(
                    sql.SQL(
                        "CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} USING ivfflat"
                        " ((embedding::halfvec({dims})) halfvec_cosine_ops) WITH (lists = {lists})"
                        " WHERE " + predicate
                    ).format(
                        name=sql.Identifier(name),
                        table=sql.Identifier(table),
                        model=sql.Literal(model),
                        dims=sql.Literal(dims),
                        lists=sql.Literal(lists),
                    )
                )
                built.append(name)
                usable = [x for x in await vector_indexes(db, table, model, dims) if x.valid]
        if usable:
            for old in [x for x in found if x.valid and x.name != usable[0].name]:
                await drop_index(db, old.name)
    return built


class VectorProbes:
    """The lists a search of each memory table's index of one model probes, from the catalogue at
    most once a minute (``None``: the table has no valid index, and its searches scan exactly)."""

    def __init__(self, db: Database, model: str, dims: int) -> None:
        self._db = db
        self._model = model
        self._dims = dims
        self._known: dict[str, tuple[int | None, float]] = {}

    async def of(self, table: str) -> int | None:
        """The lists to probe first in ``table``'s index (the iterative scan may reach
        :data:`MAX_PROBE_FACTOR` times as many).

        Cancellation: the catalogue query is cancelled; the cache keeps what it had.
        """
        now = trio.current_time()
        known = self._known.get(table)
        if known is not None and now - known[1] < _TTL:
            return known[0]
        found = await vector_indexes(self._db, table, self._model, self._dims)
        usable = [x for x in found if x.valid and x.method == "ivfflat"]
        probes = probes_for(usable[0].lists) if usable else None
        self._known[table] = (probes, now)
        return probes


async def has_prewarm(db: Database) -> bool:
    """Whether the database has ``pg_prewarm`` (migration 0105).

    Cancellation: the catalogue query is cancelled.
    """
    return bool(
        await db.fetchval("SELECT count(*) > 0 FROM pg_extension WHERE extname = 'pg_prewarm'")
    )


async def prewarm_vector_indexes(
    db: Database, model: str, dims: int, *, checked: bool = False
) -> int:
    """Load the valid vector indexes of ``model`` into the server's buffer cache with
    ``pg_prewarm`` (when the database has it; migration 0105); answers the 8 kB blocks loaded (0
    without it).

    After a restart each search reads index lists no search read yet, from the kernel's cache or
    the disk (measured at a million messages: a session-scoped search 60-190 ms cold against
    26-50 ms cached). The daemon's background embedder calls this once it has made sure the
    indexes exist.

    Cancellation: the load is cancelled on the server; what it loaded stays cached.
    """
    if not checked and not await has_prewarm(db):
        return 0
    blocks = 0
    for table in _TABLES:
        for index in await vector_indexes(db, table, model, dims):
            if index.valid:
                blocks += int(await db.fetchval("SELECT pg_prewarm(%s::regclass)", (index.name,)))
    return blocks
