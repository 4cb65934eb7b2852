"""Ranked search over the memory tables, and what every memory-table family shares: the database,
the embedder and whether the vector columns exist.

A search runs one statement per ranking (full text with ``ts_rank_cd`` over an OR of the query's
words, trigram word similarity with pg_trgm, cosine similarity with pgvector when an embedder is
configured and the database has the vector columns), concurrently, each on its own pooled
connection. Each statement returns the rows it places best first with their 1-based rank; the
store only collects each row's ranks and has :func:`engine.fuse_ranks` order them and cut the list
to ``limit`` (the one reciprocal rank fusion of the project lives in the engine).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Final, LiteralString, TypeVar

import numpy as np
import psycopg
import psycopg.rows
from psycopg import sql

from engine import (
    Embedder,
    EmbeddingError,
    Hit,
    SearchResult,
    VectorStatus,
    concurrently,
    fuse_ranks,
)

from ..embedding._threaded import MatrixEmbedder
from ._database import Database
from ._memory_vector_index import (
    MAX_PROBE_FACTOR,
    MIN_INDEXED_ROWS,
    VECTOR_DISTANCE,
    VECTOR_PREDICATE,
    VectorProbes,
)
from ._table_statistics import TableStatistics

__all__ = ["MemoryTables", "fts_query_text", "vector_literal"]

_T = TypeVar("_T")
_WORD: Final = re.compile(r"\w+", re.UNICODE)


def fts_words(query: str) -> list[str]:
    """The query's words (at most 64) for the full-text rankings."""
    return _WORD.findall(query)[:64]


def fts_query_text(query: str) -> str:
    """The query's words joined by ``or``, for ``websearch_to_tsquery`` (any word may match;
    ``ts_rank_cd`` ranks rows matching more words higher)."""
    return " or ".join(fts_words(query))


def vector_literal(vector: Sequence[float]) -> str:
    """A pgvector text literal: ``[0.1,0.2,...]``."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


# name: (extra FROM item, match condition, score expression; higher is better). The vector
# ranking's placeholders {model} and {dims} are literals (the partial IVFFlat index of
# :mod:`._memory_vector_index` is matched only by this exact expression and predicate).
_RANKINGS: Final[dict[str, tuple[LiteralString, LiteralString, LiteralString]]] = {
    "fts": (
        "",
        "{a}.tsv @@ websearch_to_tsquery('english', %(fts)s)",
        "ts_rank_cd({a}.tsv, websearch_to_tsquery('english', %(fts)s))",
    ),
    "trgm": ("", "%(q)s <%% {a}.{c}", "word_similarity(%(q)s, {a}.{c})"),
    "vec": (
        "",
        VECTOR_PREDICATE + " AND 1 - (" + VECTOR_DISTANCE + ") >= %(vmin)s",
        "1 - (" + VECTOR_DISTANCE + ")",
    ),
}


def _ranking_sql(
    ranking: str,
    table: LiteralString,
    alias: LiteralString,
    cols: LiteralString,
    text_col: LiteralString,
    *,
    filters: LiteralString,
    model: str = "",
    dims: int = 0,
) -> sql.Composed:
    """The live rows one ranking places, best first, with their rank (``r``) and score (``s``).

    The inner query orders by the score (the vector ranking by the distance itself, which an
    IVFFlat index answers) with a LIMIT; only those rows are numbered.
    """
    extra, cond, score = _RANKINGS[ranking]
    order: LiteralString = VECTOR_DISTANCE if ranking == "vec" else score + " DESC, {a}.id DESC"
    template: LiteralString = (
        "SELECT x.*, row_number() OVER (ORDER BY x.s DESC, x.id DESC) AS r FROM (SELECT {cols}, "
        + score
        + " AS s FROM {t} {a}"
        + extra
        + " WHERE "
        + cond
        + " AND {a}.expires_at > now() {f} ORDER BY "
        + order
        + " LIMIT %(lim)s) x ORDER BY r"
    )
    return sql.SQL(template).format(
        a=sql.SQL(alias),
        t=sql.Identifier(table),
        c=sql.Identifier(text_col),
        f=sql.SQL(filters),
        cols=sql.SQL(cols),
        model=sql.Literal(model),
        dims=sql.Literal(dims),
    )


def _scoped_vector_search(
    conn: psycopg.Connection[Any],
    statement: sql.Composed,
    params: Mapping[str, Any],
    probes: int | None,
) -> list[dict[str, Any]]:
    """Run the vector ranking: through the model's IVFFlat index when the table has one
    (``probes``: the lists it probes first, see :mod:`._memory_vector_index`), else by an exact
    scan.

    The scan iterates past ``probes`` (``ivfflat.iterative_scan``, up to
    :data:`MAX_PROBE_FACTOR` times as many lists) while a session or repository filter leaves the
    LIMIT unfilled; the outer query orders the rows again. Sorting is priced out (``enable_sort =
    off``, this transaction only): the planner costs one session's rows read by the session index
    and sorted by distance below the index scan, and at 50,000 rows of a session that took about
    1 s against a few tens of ms through the index."""
    if probes is not None:
        conn.execute(
            "SELECT set_config('ivfflat.probes', %s, true), set_config('ivfflat.max_probes', %s,"
            " true), set_config('ivfflat.iterative_scan', 'relaxed_order', true),"
            " set_config('enable_sort', 'off', true)",
            (str(probes), str(probes * MAX_PROBE_FACTOR)),
        )
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(statement, params)
        return cur.fetchall()


class MemoryTables:
    """The part every memory-table family of :class:`PostgresMemoryStore` shares."""

    def __init__(
        self,
        db: Database,
        *,
        embedder: Embedder | None,
        vector_columns: bool,
        min_vector_similarity: float = 0.0,
        statistics: TableStatistics | None = None,
        vector_index_min_rows: int = MIN_INDEXED_ROWS,
    ) -> None:
        self._db = db
        self._statistics = statistics or TableStatistics(db)
        self._embedder = embedder
        self._vector_columns = vector_columns
        self._min_vector_similarity = min_vector_similarity
        self._vector_index_min_rows = vector_index_min_rows
        self._probes = (
            VectorProbes(db, embedder.model, embedder.dimensions) if embedder is not None else None
        )

    @property
    def database(self) -> Database:
        """The database this store uses."""
        return self._db

    @property
    def embedder(self) -> Embedder | None:
        """The embedder, if configured."""
        return self._embedder

    @property
    def vector_status(self) -> VectorStatus:
        """``used`` when vector search runs, else why not."""
        if not self._vector_columns:
            return VectorStatus.UNAVAILABLE
        if self._embedder is None:
            return VectorStatus.NO_EMBEDDER
        return VectorStatus.USED

    async def _embed_batch(
        self, texts: Sequence[str]
    ) -> tuple[np.ndarray[Any, Any], list[bool]] | None:
        """The vectors of ``texts`` as one float32 matrix, and whether each has a direction (an
        all-zero vector has none and is stored as NULL), or ``None`` when vectors are not in use.
        """
        if self.vector_status is not VectorStatus.USED or not texts:
            return None
        assert self._embedder is not None
        vectors: Sequence[Sequence[float]] | np.ndarray[Any, Any]
        if isinstance(self._embedder, MatrixEmbedder):  # no Python float per number
            vectors = await self._embedder.embed_matrix(list(texts))
        else:
            vectors = await self._embedder.embed(list(texts))
        if len(vectors) != len(texts):
            raise EmbeddingError(f"embedder returned {len(vectors)} vectors for {len(texts)} texts")
        dims = self._embedder.dimensions
        for vector in vectors:
            if len(vector) != dims:
                raise EmbeddingError(
                    f"embedder returned a vector of {len(vector)} dims, not {dims}"
                )
        matrix = np.asarray(vectors, dtype=np.float64).reshape(len(vectors), dims)
        if not np.isfinite(matrix).all():
            raise EmbeddingError("embedder returned a vector with NaN or infinite values")
        return matrix.astype(np.float32), [bool(row.any()) for row in matrix]

    async def _embed(self, texts: Sequence[str]) -> list[str | None] | None:
        """pgvector literals of ``texts`` (``None`` for an all-zero vector, which has no
        direction), or ``None`` when vectors are not in use."""
        batch = await self._embed_batch(texts)
        if batch is None:
            return None
        matrix, has = batch
        return [
            vector_literal(row) if direction else None
            for row, direction in zip(matrix.astype(np.float64).tolist(), has, strict=True)
        ]

    def _embedding_params(self) -> dict[str, Any]:
        assert self._embedder is not None
        return {"emodel": self._embedder.model, "edims": self._embedder.dimensions}

    async def _search(
        self,
        table: LiteralString,
        alias: LiteralString,
        cols: LiteralString,
        text_col: LiteralString,
        convert: Callable[[Mapping[str, Any]], _T],
        query: str,
        *,
        filters: LiteralString,
        params: dict[str, Any],
        limit: int,
    ) -> SearchResult[_T]:
        """Run every applicable ranking of ``table`` concurrently; the hits, fused by the engine."""
        vector = self.vector_status
        params = params | {"q": query, "fts": fts_query_text(query), "lim": limit}
        use_vector = False
        if vector is VectorStatus.USED:
            embedded = await self._embed([query])
            assert embedded is not None
            if embedded[0] is not None:
                use_vector = True
                params |= {
                    "vec": embedded[0],
                    "vmin": self._min_vector_similarity,
                    **self._embedding_params(),
                }
        facts = await self._statistics.of(table)
        words = fts_words(query)
        if words:
            lexemes = await self._statistics.lexemes(words)
            params["fts"] = facts.full_text_query(words, lexemes)
        names = ["fts"] if params["fts"] else []
        if facts.trigram_fits:
            names.append("trgm")
        if use_vector:
            names.append("vec")
        vector_literals: dict[str, Any] = {}
        if use_vector:
            assert self._embedder is not None
            vector_literals = {"model": self._embedder.model, "dims": self._embedder.dimensions}

        async def rank(name: str) -> list[dict[str, Any]]:
            statement = _ranking_sql(
                name, table, alias, cols, text_col, filters=filters, **vector_literals
            )
            if name != "vec":
                return await self._db.fetch(statement, params)
            assert self._probes is not None
            probes = await self._probes.of(table)
            return await self._db.run_sync(
                lambda conn: _scoped_vector_search(conn, statement, params, probes)
            )

        ranked = await concurrently(*(partial(rank, name) for name in names))
        found: dict[str, list[dict[str, Any]]] = dict(zip(names, ranked, strict=True))
        rows: dict[int, dict[str, Any]] = {}
        ranks: dict[int, dict[str, int]] = {}
        scores: dict[int, dict[str, float]] = {}
        for name in names:
            for row in found[name]:
                rows.setdefault(row["id"], row)
                ranks.setdefault(row["id"], {})[name] = int(row["r"])
                scores.setdefault(row["id"], {})[name] = float(row["s"])
        fused = fuse_ranks(ranks, tiebreak=lambda i: -i, limit=limit)
        return SearchResult(
            tuple(Hit(convert(rows[i]), ranks[i], scores[i]) for i, _ in fused), vector
        )
