"""Conversation memory in PostgreSQL: the :class:`engine.MemoryStore` implementation.

Tables come from ``migrations/0100_memory.sql``. Every read filters ``expires_at > now()``, so an
expired row is never returned whether or not :meth:`PostgresMemoryStore.sweep_expired` has deleted
it yet. Searches rank by full text (``ts_rank_cd`` over an OR of the query's words), by trigram
word similarity (pg_trgm), and by cosine distance (pgvector) when an embedder is configured and
the database has the vector columns; each hit carries its rank in each ranking.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, LiteralString, final

import psycopg
import psycopg.rows
import trio
from psycopg import sql
from psycopg.types.json import Jsonb

import engine
from engine import (
    ContextFact,
    Decision,
    DecisionStateError,
    DecisionStatus,
    Embedder,
    EmbeddingError,
    Hit,
    InvalidArgumentError,
    MemoryNotFoundError,
    MemorySession,
    Message,
    MessageRole,
    NewDecision,
    NewMessage,
    Preference,
    SearchResult,
    SweepReport,
    VectorSearchUnavailableError,
    VectorStatus,
)

from ._database import Database

__all__ = ["PostgresMemoryStore", "create_memory_store", "fts_query_text", "vector_literal"]

_RRF_K: Final = 60

# 'infinity' cannot be loaded into a datetime: every column list maps it to NULL.
_MSG_COLS: Final = (
    "m.id, m.session_id, m.seq, m.role, m.content, m.content_hash, m.metadata, m.created_at, "
    "nullif(m.expires_at, 'infinity') AS expires_at"
)
_DEC_COLS: Final = (
    "d.id, d.session_id, d.title, d.body, d.status, d.superseded_by, d.entities, d.files, "
    "d.created_at, d.updated_at, nullif(d.expires_at, 'infinity') AS expires_at"
)
_FACT_COLS: Final = (
    "session_id, fact_type, key, value, pinned, created_at, updated_at, "
    "nullif(expires_at, 'infinity') AS expires_at"
)
_PREF_COLS: Final = (
    "user_id, key, value, confidence, source, usage_count, last_used_at, created_at, updated_at, "
    "nullif(expires_at, 'infinity') AS expires_at"
)
# A time to live in seconds (NULL: never) as an expiry timestamp.
_EXPIRY: Final = "coalesce(now() + {ttl}::float8 * interval '1 second', 'infinity')"

_WORD: Final = re.compile(r"\w+", re.UNICODE)


def fts_query_text(query: str) -> str:
    """The query's words joined by ``or``, for ``websearch_to_tsquery`` (any word may match;
    ``ts_rank_cd`` ranks rows matching more words higher)."""
    return " or ".join(_WORD.findall(query)[:64])


def vector_literal(vector: Sequence[float]) -> str:
    """A pgvector text literal: ``[0.1,0.2,...]``."""
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def _message(row: Mapping[str, Any]) -> Message:
    return Message(
        id=row["id"],
        session_id=row["session_id"],
        seq=row["seq"],
        role=MessageRole(row["role"]),
        content=row["content"],
        content_hash=row["content_hash"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
    )


def _decision(row: Mapping[str, Any]) -> Decision:
    return Decision(
        id=row["id"],
        session_id=row["session_id"],
        title=row["title"],
        body=row["body"],
        status=DecisionStatus(row["status"]),
        superseded_by=row["superseded_by"],
        entities=tuple(row["entities"]),
        files=tuple(row["files"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
    )


def _fact(row: Mapping[str, Any]) -> ContextFact:
    return ContextFact(
        session_id=row["session_id"],
        fact_type=row["fact_type"],
        key=row["key"],
        value=row["value"],
        pinned=row["pinned"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
    )


def _preference(row: Mapping[str, Any]) -> Preference:
    return Preference(
        user_id=row["user_id"],
        key=row["key"],
        value=row["value"],
        confidence=row["confidence"],
        source=row["source"],
        usage_count=row["usage_count"],
        last_used_at=row["last_used_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
    )


def _check_text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{name} must be a non-empty string, got {value!r}")


def _check_ttl(ttl: float | None) -> None:
    if ttl is not None and (isinstance(ttl, bool) or not ttl > 0):
        raise InvalidArgumentError(f"ttl must be positive seconds or None, got {ttl!r}")


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgumentError(f"limit must be a positive int, got {limit!r}")


def _json(value: Any) -> Jsonb:
    try:
        engine.canonical_json(value)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"value must be JSON-serialisable: {exc}") from None
    return Jsonb(value)


# One statement per ranking; the rankings of one search run concurrently, each on its own
# pooled connection, and are merged here. {score} is the ranking's score expression, {cond} its
# match condition.
_RANKINGS: Final[dict[str, tuple[LiteralString, LiteralString, LiteralString]]] = {
    # name: (extra FROM item, match condition, score expression; higher is better)
    "fts": (
        ", websearch_to_tsquery('english', %(fts)s) AS q(tsq)",
        "{a}.tsv @@ q.tsq",
        "ts_rank_cd({a}.tsv, q.tsq)",
    ),
    "trgm": ("", "%(q)s <%% {a}.{c}", "word_similarity(%(q)s, {a}.{c})"),
    "vec": (
        "",
        "{a}.embedding IS NOT NULL AND {a}.embedding_model = %(emodel)s"
        " AND vector_dims({a}.embedding) = %(edims)s"
        " AND 1 - ({a}.embedding <=> %(vec)s::vector) >= %(vmin)s",
        "1 - ({a}.embedding <=> %(vec)s::vector)",
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
) -> sql.Composed:
    """The live rows one ranking places, best first, with their rank (``r``) and score (``s``)."""
    extra, cond, score = _RANKINGS[ranking]
    template: LiteralString = (
        "SELECT {cols}, row_number() OVER (ORDER BY "
        + score
        + " DESC, {a}.id DESC) AS r, "
        + score
        + " AS s FROM {t} {a}"
        + extra
        + " WHERE "
        + cond
        + " AND {a}.expires_at > now() {f} ORDER BY r LIMIT %(lim)s"
    )
    return sql.SQL(template).format(
        a=sql.SQL(alias),
        t=sql.Identifier(table),
        c=sql.Identifier(text_col),
        f=sql.SQL(filters),
        cols=sql.SQL(cols),
    )


def _merge_rankings(
    rankings: dict[str, list[dict[str, Any]]], convert: Any, limit: int
) -> list[Hit[Any]]:
    """Hits of every ranking, merged by row id, best first by reciprocal rank fusion."""
    rows: dict[int, dict[str, Any]] = {}
    ranks: dict[int, dict[str, int]] = {}
    scores: dict[int, dict[str, float]] = {}
    for name, found in rankings.items():
        for row in found:
            rows.setdefault(row["id"], row)
            ranks.setdefault(row["id"], {})[name] = int(row["r"])
            scores.setdefault(row["id"], {})[name] = float(row["s"])
    fused = sorted(
        rows,
        key=lambda i: (-sum(1.0 / (_RRF_K + r) for r in ranks[i].values()), -i),
    )
    return [Hit(convert(rows[i]), ranks[i], scores[i]) for i in fused[:limit]]


@final
class PostgresMemoryStore:
    """:class:`engine.MemoryStore` over a :class:`Database` (get one from :func:`create_memory_store`).

    Every call is one statement or one transaction, admitted through the database's priority gate.
    Cancellation of any call: the statement is cancelled on the server and its transaction rolled
    back; nothing is half-written.
    """

    def __init__(
        self,
        db: Database,
        *,
        embedder: Embedder | None,
        vector_columns: bool,
        min_vector_similarity: float = 0.0,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._vector_columns = vector_columns
        self._min_vector_similarity = min_vector_similarity

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

    # -- embeddings ---------------------------------------------------------------------------

    async def _embed(self, texts: Sequence[str]) -> list[str | None] | None:
        """pgvector literals of ``texts`` (``None`` for an all-zero vector, which has no
        direction), or ``None`` when vectors are not in use."""
        if self.vector_status is not VectorStatus.USED or not texts:
            return None
        assert self._embedder is not None
        vectors = await self._embedder.embed(list(texts))
        if len(vectors) != len(texts):
            raise EmbeddingError(f"embedder returned {len(vectors)} vectors for {len(texts)} texts")
        dims = self._embedder.dimensions
        out: list[str | None] = []
        for vector in vectors:
            if len(vector) != dims:
                raise EmbeddingError(
                    f"embedder returned a vector of {len(vector)} dims, not {dims}"
                )
            if not all(math.isfinite(x) for x in vector):
                raise EmbeddingError("embedder returned a vector with NaN or infinite values")
            out.append(vector_literal(vector) if any(vector) else None)
        return out

    def _embedding_params(self) -> dict[str, Any]:
        assert self._embedder is not None
        return {"emodel": self._embedder.model, "edims": self._embedder.dimensions}

    # -- sessions -----------------------------------------------------------------------------

    async def ensure_session(
        self, session_id: str, *, title: str = "", metadata: Mapping[str, Any] | None = None
    ) -> MemorySession:
        """Create the memory session for an engine session id, or return the existing one
        (its title and metadata are updated when given).

        Cancellation: nothing is written.
        """
        _check_text("session_id", session_id)
        row = await self._db.fetchrow(
            "INSERT INTO memory_sessions AS s (session_id, title, metadata)"
            " VALUES (%(sid)s, %(title)s, coalesce(%(meta)s, '{}'::jsonb))"
            " ON CONFLICT (session_id) DO UPDATE SET"
            " title = CASE WHEN %(title)s = '' THEN s.title ELSE %(title)s END,"
            " metadata = coalesce(%(meta)s, s.metadata),"
            " updated_at = now()"
            " RETURNING session_id, title, metadata, created_at",
            {
                "sid": session_id,
                "title": title,
                "meta": None if metadata is None else _json(metadata),
            },
        )
        assert row is not None
        return MemorySession(row["session_id"], row["title"], row["metadata"], row["created_at"])

    # -- messages -----------------------------------------------------------------------------

    async def add_message(
        self,
        session_id: str,
        role: MessageRole | str,
        content: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        ttl: float | None = None,
    ) -> Message:
        """Append one message (see :meth:`add_messages`).

        Cancellation: nothing is written.
        """
        new = NewMessage(role=role, content=content, metadata=dict(metadata or {}), ttl=ttl)
        return (await self.add_messages(session_id, [new]))[0]

    async def add_messages(self, session_id: str, messages: Sequence[NewMessage]) -> list[Message]:
        """Append messages to a session (created if missing) in one transaction, numbered in order.

        Cancellation: nothing is written (the embedding, if any, is computed first).
        """
        _check_text("session_id", session_id)
        if not messages:
            return []
        for m in messages:
            if not isinstance(m, NewMessage):
                raise InvalidArgumentError(f"expected NewMessage, got {type(m).__name__}")
        embeddings = await self._embed([m.content for m in messages])
        params: dict[str, Any] = {
            "sid": session_id,
            "n": len(messages),
            "roles": [str(MessageRole(m.role)) for m in messages],
            "contents": [m.content for m in messages],
            "hashes": [engine.content_hash(m.content) for m in messages],
            "metas": [_json(dict(m.metadata)) for m in messages],
            "ttls": [m.ttl for m in messages],
        }
        emb_cols: LiteralString = ""
        emb_vals: LiteralString = ""
        emb_unnest: LiteralString = ""
        emb_alias: LiteralString = ""
        if embeddings is not None:
            params |= {"embs": embeddings, **self._embedding_params()}
            emb_cols = ", embedding, embedding_model"
            emb_vals = ", t.emb::vector, %(emodel)s"
            emb_unnest = ", %(embs)s::text[]"
            emb_alias = ", emb"
        insert: LiteralString = (
            "INSERT INTO memory_messages AS m (session_id, seq, role, content, content_hash,"
            " metadata, expires_at" + emb_cols + ")"
            " SELECT %(sid)s, %(first)s + t.ord - 1, t.role, t.content, t.hash, t.meta,"
            " coalesce(now() + t.ttl * interval '1 second', 'infinity')" + emb_vals + " FROM"
            " unnest(%(roles)s::text[], %(contents)s::text[], %(hashes)s::text[],"
            " %(metas)s::jsonb[], %(ttls)s::float8[]" + emb_unnest + ") WITH ORDINALITY"
            " AS t(role, content, hash, meta, ttl" + emb_alias + ", ord) ORDER BY t.ord"
            " RETURNING " + _MSG_COLS
        )

        def work(conn: psycopg.Connection[Any]) -> list[Message]:
            conn.execute(
                "INSERT INTO memory_sessions (session_id) VALUES (%s) ON CONFLICT DO NOTHING",
                (session_id,),
            )
            row = conn.execute(
                "UPDATE memory_sessions SET next_seq = next_seq + %(n)s, updated_at = now()"
                " WHERE session_id = %(sid)s RETURNING next_seq - %(n)s",
                params,
            ).fetchone()
            assert row is not None
            with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                cur.execute(insert, params | {"first": row[0]})
                rows = cur.fetchall()
            return sorted((_message(r) for r in rows), key=lambda m: m.seq)

        return await self._db.run_sync(work)

    async def get_messages(
        self, session_id: str, *, limit: int | None = None, after_seq: int = 0
    ) -> list[Message]:
        """Live messages of a session in order; ``limit`` keeps the newest ``limit``.

        Cancellation: the query is cancelled.
        """
        _check_text("session_id", session_id)
        if limit is not None:
            _check_limit(limit)
        rows = await self._db.fetch(
            "SELECT * FROM (SELECT " + _MSG_COLS + " FROM memory_messages m"
            " WHERE m.session_id = %(sid)s AND m.seq > %(after)s AND m.expires_at > now()"
            " ORDER BY m.seq DESC LIMIT %(lim)s) x ORDER BY seq",
            {"sid": session_id, "after": after_seq, "lim": limit},
        )
        return [_message(r) for r in rows]

    async def search_messages(
        self, query: str, *, session_id: str | None = None, limit: int = 20
    ) -> SearchResult[Message]:
        """Search live messages by full text, trigram and (when available) vector similarity.

        Hits come best first (reciprocal rank fusion of the rankings), each with its ranks.

        Cancellation: the query is cancelled.
        """
        _check_text("query", query)
        _check_limit(limit)
        if session_id is not None:
            _check_text("session_id", session_id)
        return await self._search(
            "memory_messages",
            "m",
            _MSG_COLS,
            "content",
            _message,
            query,
            filters="AND m.session_id = %(sid)s" if session_id is not None else "",
            params={"sid": session_id},
            limit=limit,
        )

    async def vector_search_messages(
        self, query: str, *, session_id: str | None = None, limit: int = 20
    ) -> SearchResult[Message]:
        """Search messages by vector similarity only.

        Raises:
            VectorSearchUnavailableError: No embedder, or no pgvector in this database.

        Cancellation: the query is cancelled.
        """
        status = self.vector_status
        if status is not VectorStatus.USED:
            raise VectorSearchUnavailableError(f"vector search is unavailable ({status.value})")
        result = await self.search_messages(query, session_id=session_id, limit=limit)
        hits = tuple(h for h in result.hits if "vec" in h.ranks)
        return SearchResult(tuple(sorted(hits, key=lambda h: h.ranks["vec"])), result.vector)

    async def _search(
        self,
        table: LiteralString,
        alias: LiteralString,
        cols: LiteralString,
        text_col: LiteralString,
        convert: Any,
        query: str,
        *,
        filters: LiteralString,
        params: dict[str, Any],
        limit: int,
    ) -> SearchResult[Any]:
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
        names = [n for n in ("fts", "trgm") if n != "fts" or params["fts"]]
        if use_vector:
            names.append("vec")
        found: dict[str, list[dict[str, Any]]] = {}
        errors: list[Exception] = []

        async def rank(name: str, scope: trio.CancelScope) -> None:
            statement = _ranking_sql(name, table, alias, cols, text_col, filters=filters)
            try:
                found[name] = await self._db.fetch(statement, params)
            except Exception as exc:  # re-raised below as itself, not inside an ExceptionGroup
                errors.append(exc)
                scope.cancel()

        async with trio.open_nursery() as nursery:
            for name in names:
                nursery.start_soon(rank, name, nursery.cancel_scope)
        if errors:
            raise errors[0]
        hits = _merge_rankings({n: found[n] for n in names}, convert, limit)
        return SearchResult(tuple(hits), vector)

    # -- context facts ------------------------------------------------------------------------

    async def set_fact(
        self,
        session_id: str,
        fact_type: str,
        key: str,
        value: Any,
        *,
        pinned: bool = False,
        ttl: float | None = None,
    ) -> ContextFact:
        """Insert or replace the fact ``(session_id, fact_type, key)`` (session created if missing).

        Cancellation: nothing is written.
        """
        _check_text("session_id", session_id)
        _check_text("fact_type", fact_type)
        _check_text("key", key)
        _check_ttl(ttl)
        params = {
            "sid": session_id,
            "type": fact_type,
            "key": key,
            "value": _json(value),
            "pinned": bool(pinned),
            "ttl": ttl,
        }

        def work(conn: psycopg.Connection[Any]) -> ContextFact:
            conn.execute(
                "INSERT INTO memory_sessions (session_id) VALUES (%s) ON CONFLICT DO NOTHING",
                (session_id,),
            )
            with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                cur.execute(
                    "INSERT INTO memory_context_facts AS f"
                    " (session_id, fact_type, key, value, pinned, expires_at)"
                    " VALUES (%(sid)s, %(type)s, %(key)s, %(value)s, %(pinned)s, "
                    + _EXPIRY.format(ttl="%(ttl)s")
                    + ") ON CONFLICT (session_id, fact_type, key) DO UPDATE SET"
                    " value = excluded.value, pinned = excluded.pinned,"
                    " expires_at = excluded.expires_at, updated_at = now(),"
                    " created_at = CASE WHEN f.expires_at > now() THEN f.created_at ELSE now() END"
                    " RETURNING " + _FACT_COLS,
                    params,
                )
                row = cur.fetchone()
            assert row is not None
            return _fact(row)

        return await self._db.run_sync(work)

    async def get_fact(self, session_id: str, fact_type: str, key: str) -> ContextFact | None:
        """The live fact, or ``None``.

        Cancellation: the query is cancelled.
        """
        row = await self._db.fetchrow(
            "SELECT " + _FACT_COLS + " FROM memory_context_facts WHERE session_id = %s"
            " AND fact_type = %s AND key = %s AND expires_at > now()",
            (session_id, fact_type, key),
        )
        return None if row is None else _fact(row)

    async def list_facts(
        self, session_id: str, *, fact_type: str | None = None, pinned_only: bool = False
    ) -> list[ContextFact]:
        """Live facts of a session, pinned first, then by type and key.

        Cancellation: the query is cancelled.
        """
        rows = await self._db.fetch(
            "SELECT " + _FACT_COLS + " FROM memory_context_facts WHERE session_id = %(sid)s"
            " AND (%(type)s::text IS NULL OR fact_type = %(type)s)"
            " AND (pinned OR NOT %(pinned_only)s) AND expires_at > now()"
            " ORDER BY pinned DESC, fact_type, key",
            {"sid": session_id, "type": fact_type, "pinned_only": pinned_only},
        )
        return [_fact(r) for r in rows]

    async def delete_fact(self, session_id: str, fact_type: str, key: str) -> bool:
        """Delete a fact; ``True`` when a live one existed.

        Cancellation: nothing is deleted.
        """
        row = await self._db.fetchval(
            "WITH gone AS (DELETE FROM memory_context_facts WHERE session_id = %s"
            " AND fact_type = %s AND key = %s RETURNING expires_at > now() AS live)"
            " SELECT coalesce(bool_or(live), false) FROM gone",
            (session_id, fact_type, key),
        )
        return bool(row)

    # -- decisions ----------------------------------------------------------------------------

    @staticmethod
    def _decision_params(decision: NewDecision) -> dict[str, Any]:
        return {
            "sid": decision.session_id,
            "title": decision.title,
            "body": decision.body,
            "status": str(DecisionStatus(decision.status)),
            "entities": list(decision.entities),
            "files": list(decision.files),
            "ttl": decision.ttl,
        }

    def _insert_decision(
        self,
        conn: psycopg.Connection[Any],
        params: Mapping[str, Any],
        embedding: str | None,
    ) -> Decision:
        if params["sid"] is not None:
            conn.execute(
                "INSERT INTO memory_sessions (session_id) VALUES (%s) ON CONFLICT DO NOTHING",
                (params["sid"],),
            )
        emb_cols: LiteralString = ""
        emb_vals: LiteralString = ""
        values = dict(params)
        if embedding is not None:
            emb_cols = ", embedding, embedding_model"
            emb_vals = ", %(emb)s::vector, %(emodel)s"
            values |= {"emb": embedding, **self._embedding_params()}
        with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            cur.execute(
                "INSERT INTO memory_decisions AS d (session_id, title, body, status, entities,"
                " files, expires_at" + emb_cols + ") VALUES (%(sid)s, %(title)s, %(body)s,"
                " %(status)s, %(entities)s, %(files)s, "
                + _EXPIRY.format(ttl="%(ttl)s")
                + emb_vals
                + ") RETURNING "
                + _DEC_COLS,
                values,
            )
            row = cur.fetchone()
        assert row is not None
        return _decision(row)

    async def add_decision(self, decision: NewDecision) -> Decision:
        """Record a decision (its session is created if missing).

        Cancellation: nothing is written.
        """
        if not isinstance(decision, NewDecision):
            raise InvalidArgumentError(f"expected NewDecision, got {type(decision).__name__}")
        params = self._decision_params(decision)
        embedded = await self._embed([f"{decision.title}\n{decision.body}"])
        embedding = None if embedded is None else embedded[0]
        return await self._db.run_sync(lambda conn: self._insert_decision(conn, params, embedding))

    async def get_decision(self, decision_id: int) -> Decision:
        """A live decision (any status).

        Raises:
            MemoryNotFoundError: No such live decision.

        Cancellation: the query is cancelled.
        """
        row = await self._db.fetchrow(
            "SELECT " + _DEC_COLS + " FROM memory_decisions d WHERE d.id = %s"
            " AND d.expires_at > now()",
            (decision_id,),
        )
        if row is None:
            raise MemoryNotFoundError(f"no live decision {decision_id}")
        return _decision(row)

    @staticmethod
    def _lock_decision(conn: psycopg.Connection[Any], decision_id: int) -> str:
        row = conn.execute(
            "SELECT status FROM memory_decisions WHERE id = %s AND expires_at > now() FOR UPDATE",
            (decision_id,),
        ).fetchone()
        if row is None:
            raise MemoryNotFoundError(f"no live decision {decision_id}")
        return str(row[0])

    async def close_decision(self, decision_id: int) -> Decision:
        """Mark a decision closed (closing a closed one changes nothing).

        Raises:
            MemoryNotFoundError: No such live decision.
            DecisionStateError: It is superseded.

        Cancellation: nothing is written.
        """

        def work(conn: psycopg.Connection[Any]) -> Decision:
            status = self._lock_decision(conn, decision_id)
            if status == DecisionStatus.SUPERSEDED:
                raise DecisionStateError(f"decision {decision_id} is superseded; it cannot close")
            with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                cur.execute(
                    "UPDATE memory_decisions d SET status = 'closed',"
                    " updated_at = CASE WHEN d.status = 'closed' THEN d.updated_at ELSE now() END"
                    " WHERE d.id = %s RETURNING " + _DEC_COLS,
                    (decision_id,),
                )
                row = cur.fetchone()
            assert row is not None
            return _decision(row)

        return await self._db.run_sync(work)

    async def supersede_decision(self, decision_id: int, replacement: NewDecision) -> Decision:
        """Record ``replacement`` and mark ``decision_id`` superseded by it, in one transaction.

        A replacement without a session gets the session of the decision it replaces.

        Returns:
            The new decision.

        Raises:
            MemoryNotFoundError: No such live decision.
            DecisionStateError: It is already superseded (supersede its successor instead).

        Cancellation: nothing is written.
        """
        if not isinstance(replacement, NewDecision):
            raise InvalidArgumentError(f"expected NewDecision, got {type(replacement).__name__}")
        params = self._decision_params(replacement)
        embedded = await self._embed([f"{replacement.title}\n{replacement.body}"])
        embedding = None if embedded is None else embedded[0]

        def work(conn: psycopg.Connection[Any]) -> Decision:
            status = self._lock_decision(conn, decision_id)
            if status == DecisionStatus.SUPERSEDED:
                raise DecisionStateError(
                    f"decision {decision_id} is already superseded; supersede its successor"
                )
            values = dict(params)
            if values["sid"] is None:  # the replacement belongs where the decision it replaces did
                values["sid"] = conn.execute(
                    "SELECT session_id FROM memory_decisions WHERE id = %s", (decision_id,)
                ).fetchone()[0]  # type: ignore[index]
            new = self._insert_decision(conn, values, embedding)
            conn.execute(
                "UPDATE memory_decisions SET status = 'superseded', superseded_by = %s,"
                " updated_at = now() WHERE id = %s",
                (new.id, decision_id),
            )
            return new

        return await self._db.run_sync(work)

    async def decision_chain(self, decision_id: int) -> list[Decision]:
        """The live decisions of the supersession chain through ``decision_id``, oldest first.

        The last one is current unless it expired (expired links are left out, never returned).

        Raises:
            MemoryNotFoundError: ``decision_id`` is not a live decision.

        Cancellation: the query is cancelled.
        """
        rows = await self._db.fetch(
            "WITH RECURSIVE fwd AS ("
            "  SELECT id, superseded_by, 0 AS depth FROM memory_decisions WHERE id = %(id)s"
            "  UNION ALL SELECT d.id, d.superseded_by, fwd.depth + 1 FROM memory_decisions d"
            "  JOIN fwd ON d.id = fwd.superseded_by WHERE fwd.depth < 10000),"
            " back AS ("
            "  SELECT id, 0 AS depth FROM memory_decisions WHERE id = %(id)s"
            "  UNION ALL SELECT d.id, back.depth - 1 FROM memory_decisions d"
            "  JOIN back ON d.superseded_by = back.id WHERE back.depth > -10000),"
            " chain AS (SELECT id, depth FROM fwd UNION SELECT id, depth FROM back)"
            " SELECT " + _DEC_COLS + ", chain.depth FROM chain JOIN memory_decisions d"
            " ON d.id = chain.id WHERE d.expires_at > now() ORDER BY chain.depth",
            {"id": decision_id},
        )
        if not any(r["id"] == decision_id for r in rows):
            raise MemoryNotFoundError(f"no live decision {decision_id}")
        return [_decision(r) for r in rows]

    async def search_decisions(
        self,
        query: str,
        *,
        session_id: str | None = None,
        include_superseded: bool = False,
        limit: int = 20,
    ) -> SearchResult[Decision]:
        """Search live decisions (title and body) by full text, trigram and vector similarity.

        Superseded decisions are left out unless ``include_superseded``.

        Cancellation: the query is cancelled.
        """
        _check_text("query", query)
        _check_limit(limit)
        filters: LiteralString = ""
        if session_id is not None:
            _check_text("session_id", session_id)
            filters += " AND d.session_id = %(sid)s"
        if not include_superseded:
            filters += " AND d.status <> 'superseded'"
        return await self._search(
            "memory_decisions",
            "d",
            _DEC_COLS,
            "search_text",
            _decision,
            query,
            filters=filters,
            params={"sid": session_id},
            limit=limit,
        )

    # -- preferences --------------------------------------------------------------------------

    async def set_preference(
        self,
        user_id: str,
        key: str,
        value: Any,
        *,
        confidence: float,
        source: str,
        ttl: float | None = None,
    ) -> Preference:
        """Insert or replace a user preference; a live one keeps its usage count.

        Cancellation: nothing is written.
        """
        _check_text("user_id", user_id)
        _check_text("key", key)
        _check_text("source", source)
        _check_ttl(ttl)
        if isinstance(confidence, bool) or not 0.0 <= confidence <= 1.0:
            raise InvalidArgumentError(f"confidence must be within [0, 1], got {confidence!r}")
        row = await self._db.fetchrow(
            "INSERT INTO memory_preferences AS p (user_id, key, value, confidence, source,"
            " expires_at) VALUES (%(user)s, %(key)s, %(value)s, %(conf)s, %(source)s, "
            + _EXPIRY.format(ttl="%(ttl)s")
            + ") ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value,"
            " confidence = excluded.confidence, source = excluded.source,"
            " expires_at = excluded.expires_at, updated_at = now(),"
            " usage_count = CASE WHEN p.expires_at > now() THEN p.usage_count ELSE 0 END,"
            " last_used_at = CASE WHEN p.expires_at > now() THEN p.last_used_at END,"
            " created_at = CASE WHEN p.expires_at > now() THEN p.created_at ELSE now() END"
            " RETURNING " + _PREF_COLS,
            {
                "user": user_id,
                "key": key,
                "value": _json(value),
                "conf": float(confidence),
                "source": source,
                "ttl": ttl,
            },
        )
        assert row is not None
        return _preference(row)

    async def get_preference(
        self, user_id: str, key: str, *, record_use: bool = True
    ) -> Preference | None:
        """The live preference, counting one use unless ``record_use`` is false.

        Cancellation: nothing is counted.
        """
        if record_use:
            row = await self._db.fetchrow(
                "UPDATE memory_preferences SET usage_count = usage_count + 1,"
                " last_used_at = now() WHERE user_id = %s AND key = %s AND expires_at > now()"
                " RETURNING " + _PREF_COLS,
                (user_id, key),
            )
        else:
            row = await self._db.fetchrow(
                "SELECT " + _PREF_COLS + " FROM memory_preferences WHERE user_id = %s"
                " AND key = %s AND expires_at > now()",
                (user_id, key),
            )
        return None if row is None else _preference(row)

    async def list_preferences(
        self, user_id: str, *, min_confidence: float = 0.0
    ) -> list[Preference]:
        """Live preferences of a user, most confident first (then most used).

        Cancellation: the query is cancelled.
        """
        rows = await self._db.fetch(
            "SELECT " + _PREF_COLS + " FROM memory_preferences WHERE user_id = %s"
            " AND confidence >= %s AND expires_at > now()"
            " ORDER BY confidence DESC, usage_count DESC, key",
            (user_id, min_confidence),
        )
        return [_preference(r) for r in rows]

    # -- retrieval cache ----------------------------------------------------------------------

    async def cache_get(self, key: str) -> Any | None:
        """A live retrieval-cache value, or ``None``.

        Cancellation: the query is cancelled.
        """
        return await self._db.fetchval(
            "SELECT value FROM memory_retrieval_cache WHERE cache_key = %s AND expires_at > now()",
            (key,),
        )

    async def cache_put(self, key: str, value: Any, *, ttl: float) -> None:
        """Store a retrieval-cache value for ``ttl`` seconds (replacing any previous one).

        Cancellation: nothing is written.
        """
        _check_text("key", key)
        if ttl is None:
            raise InvalidArgumentError("retrieval-cache entries need a ttl")
        _check_ttl(ttl)
        await self._db.execute(
            "INSERT INTO memory_retrieval_cache (cache_key, value, expires_at)"
            " VALUES (%(key)s, %(value)s, now() + %(ttl)s::float8 * interval '1 second')"
            " ON CONFLICT (cache_key) DO UPDATE SET value = excluded.value,"
            " created_at = now(), expires_at = excluded.expires_at",
            {"key": key, "value": _json(value), "ttl": ttl},
        )

    # -- sweeping -----------------------------------------------------------------------------

    async def sweep_expired(self) -> SweepReport:
        """Delete expired rows from every memory table (one transaction).

        Cancellation: nothing is deleted.
        """

        def work(conn: psycopg.Connection[Any]) -> SweepReport:
            deleted: dict[str, int] = {}
            for table in (
                "memory_messages",
                "memory_context_facts",
                "memory_decisions",
                "memory_preferences",
                "memory_retrieval_cache",
                "memory_generation_cache",
            ):
                cur = conn.execute(
                    sql.SQL("DELETE FROM {} WHERE expires_at <= now()").format(
                        sql.Identifier(table)
                    )
                )
                deleted[table] = cur.rowcount
            return SweepReport(deleted)

        return await self._db.run_sync(work)


async def create_memory_store(
    db: Database, *, embedder: Embedder | None = None, min_vector_similarity: float = 0.0
) -> PostgresMemoryStore:
    """A memory store over ``db``, finding out whether the database has the vector columns.

    Vector search returns rows whose cosine similarity to the query is at least
    ``min_vector_similarity`` (tune it to the embedder: unrelated texts score near 0 with
    :class:`HashingEmbedder`, higher with many learned models).

    Without pgvector (or with ``scribe.memory_vector = 'off'`` at migration time), vector search
    reports :attr:`engine.VectorStatus.UNAVAILABLE` and everything else works.

    Cancellation: the probe query is cancelled; no store is made.
    """
    if embedder is not None and not isinstance(embedder, Embedder):
        raise InvalidArgumentError("embedder must implement engine.Embedder")
    has_vector = await db.fetchval(
        "SELECT count(*) = 2 FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND column_name = 'embedding' AND table_name IN ('memory_messages', 'memory_decisions')"
    )
    if not -1.0 <= min_vector_similarity <= 1.0:
        raise InvalidArgumentError("min_vector_similarity must be within [-1, 1]")
    return PostgresMemoryStore(
        db,
        embedder=embedder,
        vector_columns=bool(has_vector),
        min_vector_similarity=min_vector_similarity,
    )
