"""Memory sessions and their messages in PostgreSQL (tables ``memory_sessions``, ``memory_messages``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, LiteralString

import psycopg
import psycopg.rows

from engine import (
    QUERY_MAX,
    InvalidArgumentError,
    MemorySession,
    Message,
    MessageRole,
    NewMessage,
    SearchResult,
    VectorSearchUnavailableError,
    VectorStatus,
    check_limit,
    check_optional_limit,
    check_repo,
    check_text,
    concurrently,
    content_hash,
)

from ._memory_ranking import MemoryTables
from ._memory_rows import ENSURE_SESSION, MSG_COLS, jsonb, message_row, scope_filter
from ._vector_batch import float4_array

__all__ = ["MemoryMessages"]


class MemoryMessages(MemoryTables):
    """Sessions and messages: append, read in order, search."""

    async def ensure_session(
        self,
        session_id: str,
        *,
        title: str = "",
        metadata: Mapping[str, Any] | None = None,
        repo: str | None = None,
    ) -> MemorySession:
        """Create the memory session for an engine session id, or return the existing one
        (its title, metadata and repository are updated when given).

        Cancellation: nothing is written.
        """
        check_text("session_id", session_id)
        check_repo(repo)
        row = await self._db.fetchrow(
            "INSERT INTO memory_sessions AS s (session_id, title, metadata, repo)"
            " VALUES (%(sid)s, %(title)s, coalesce(%(meta)s, '{}'::jsonb), %(repo)s)"
            " ON CONFLICT (session_id) DO UPDATE SET"
            " title = CASE WHEN %(title)s = '' THEN s.title ELSE %(title)s END,"
            " metadata = coalesce(%(meta)s, s.metadata),"
            " repo = coalesce(%(repo)s, s.repo),"
            " updated_at = now()"
            " RETURNING session_id, title, metadata, created_at, repo",
            {
                "sid": session_id,
                "title": title,
                "meta": None if metadata is None else jsonb("metadata", metadata),
                "repo": repo,
            },
        )
        assert row is not None
        return MemorySession(
            row["session_id"], row["title"], row["metadata"], row["created_at"], row["repo"]
        )

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

    async def add_messages(
        self, session_id: str, messages: Sequence[NewMessage], *, embed: bool = True
    ) -> list[Message]:
        """Append messages to a session (created if missing) in one transaction, numbered in order;
        answers the messages stored. A message whose ``source_id`` the session already has, or
        that an earlier message of the call carries, is skipped (the session's row is locked
        while the source ids are checked, so two imports of one record store it once).

        With ``embed`` false the messages are stored without vectors, at once; the embedding
        backlog (:class:`adapters.EmbeddingBackfill`) gives them theirs later.

        Cancellation: nothing is written (the embedding, if any, is computed first, while the
        session's source ids already stored are looked up).
        """
        check_text("session_id", session_id)
        if not messages:
            return []
        for m in messages:
            if not isinstance(m, NewMessage):
                raise InvalidArgumentError(f"expected NewMessage, got {type(m).__name__}")
        messages = _first_of_each_source(messages)
        sources = [m.source_id for m in messages if m.source_id is not None]
        embeddings = None
        if sources and embed and self.vector_status is VectorStatus.USED:
            # What is stored already is looked up while the batch is embedded (checked again
            # under the lock below), and left out with its vector.
            known, embeddings = await concurrently(
                partial(self._known_sources, session_id, sources),
                partial(self._embed_batch, [m.content for m in messages]),
            )
            new = [i for i, m in enumerate(messages) if m.source_id not in known]
            if not new:
                return []
            messages = [messages[i] for i in new]
            if embeddings is not None:
                matrix, has = embeddings
                embeddings = matrix[new], [has[i] for i in new]
        elif embed:
            embeddings = await self._embed_batch([m.content for m in messages])
        emb_cols: LiteralString = ""
        emb_vals: LiteralString = ""
        emb_unnest: LiteralString = ""
        emb_alias: LiteralString = ""
        if embeddings is not None:
            # One binary real[] for the batch; each row takes its slice (see _vector_batch).
            emb_cols = ", embedding, embedding_model"
            emb_vals = (
                ", CASE WHEN t.has THEN (%(embs)s::float4[])"
                "[(t.ord - 1) * %(edims)s + 1 : t.ord * %(edims)s]::vector END, %(emodel)s"
            )
            emb_unnest = ", %(has)s::bool[]"
            emb_alias = ", has"
        insert: LiteralString = (
            "INSERT INTO memory_messages AS m (session_id, seq, role, content, content_hash,"
            " metadata, expires_at, source_id" + emb_cols + ")"
            " SELECT %(sid)s, %(first)s + t.ord - 1, t.role, t.content, t.hash, t.meta,"
            " coalesce(now() + t.ttl * interval '1 second', 'infinity'), t.src"
            + emb_vals
            + " FROM unnest(%(roles)s::text[], %(contents)s::text[], %(hashes)s::text[],"
            " %(metas)s::jsonb[], %(ttls)s::float8[], %(srcs)s::text[]" + emb_unnest + ")"
            " WITH ORDINALITY AS t(role, content, hash, meta, ttl, src" + emb_alias + ", ord)"
            " ORDER BY t.ord RETURNING " + MSG_COLS
        )
        metas = [jsonb("metadata", dict(m.metadata)) for m in messages]

        def work(conn: psycopg.Connection[Any]) -> list[Message]:
            conn.execute(ENSURE_SESSION, (session_id,))
            conn.execute(
                "SELECT 1 FROM memory_sessions WHERE session_id = %s FOR UPDATE", (session_id,)
            )
            kept = list(range(len(messages)))
            if sources:
                found = conn.execute(
                    "SELECT source_id FROM memory_messages"
                    " WHERE session_id = %s AND source_id = ANY(%s)",
                    (session_id, sources),
                ).fetchall()
                known = {r[0] for r in found}
                kept = [i for i in kept if messages[i].source_id not in known]
            if not kept:
                return []
            params: dict[str, Any] = {
                "sid": session_id,
                "n": len(kept),
                "roles": [str(MessageRole(messages[i].role)) for i in kept],
                "contents": [messages[i].content for i in kept],
                "hashes": [content_hash(messages[i].content) for i in kept],
                "metas": [metas[i] for i in kept],
                "ttls": [messages[i].ttl for i in kept],
                "srcs": [messages[i].source_id for i in kept],
            }
            if embeddings is not None:
                matrix, has = embeddings
                params |= {
                    "embs": float4_array(matrix[kept]),
                    "has": [has[i] for i in kept],
                    **self._embedding_params(),
                }
            row = conn.execute(
                "UPDATE memory_sessions SET next_seq = next_seq + %(n)s, updated_at = now()"
                " WHERE session_id = %(sid)s RETURNING next_seq - %(n)s",
                params,
            ).fetchone()
            assert row is not None
            with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                cur.execute(insert, params | {"first": row[0]})
                rows = cur.fetchall()
            return sorted((message_row(r) for r in rows), key=lambda m: m.seq)

        return await self._db.run_sync(work)

    async def _known_sources(self, session_id: str, sources: list[str]) -> set[str]:
        rows = await self._db.fetch(
            "SELECT source_id FROM memory_messages WHERE session_id = %(sid)s"
            " AND source_id = ANY(%(srcs)s)",
            {"sid": session_id, "srcs": sources},
        )
        return {r["source_id"] for r in rows}

    async def get_messages(
        self, session_id: str, *, limit: int | None = None, after_seq: int = 0
    ) -> list[Message]:
        """Live messages of a session in order; ``limit`` keeps the newest ``limit``.

        Cancellation: the query is cancelled.
        """
        check_text("session_id", session_id)
        check_optional_limit(limit)
        rows = await self._db.fetch(
            "SELECT * FROM (SELECT " + MSG_COLS + " FROM memory_messages m"
            " WHERE m.session_id = %(sid)s AND m.seq > %(after)s AND m.expires_at > now()"
            " ORDER BY m.seq DESC LIMIT %(lim)s) x ORDER BY seq",
            {"sid": session_id, "after": after_seq, "lim": limit},
        )
        return [message_row(r) for r in rows]

    async def search_messages(
        self,
        query: str,
        *,
        session_id: str | None = None,
        repo: str | None = None,
        limit: int = 20,
    ) -> SearchResult[Message]:
        """Search live messages by full text, trigram and (when available) vector similarity, of
        one session, of the sessions carrying ``repo``, or (both given) of either.

        At most ``limit`` hits, best first by :func:`engine.fuse_ranks` of their ranks, each with
        its rank and score in every ranking that found it.

        Cancellation: the query is cancelled.
        """
        check_text("query", query, maximum=QUERY_MAX)
        check_limit(limit)
        check_repo(repo)
        if session_id is not None:
            check_text("session_id", session_id)
        filters = scope_filter("m", session=session_id is not None, repo=repo is not None)
        return await self._search(
            "memory_messages",
            "m",
            MSG_COLS,
            "content",
            message_row,
            query,
            filters=filters,
            params={"sid": session_id, "repo": repo},
            limit=limit,
        )

    async def vector_search_messages(
        self,
        query: str,
        *,
        session_id: str | None = None,
        repo: str | None = None,
        limit: int = 20,
    ) -> SearchResult[Message]:
        """Search messages by vector similarity only.

        Raises:
            VectorSearchUnavailableError: No embedder, or no pgvector in this database.

        Cancellation: the query is cancelled.
        """
        status = self.vector_status
        if status is not VectorStatus.USED:
            raise VectorSearchUnavailableError(f"vector search is unavailable ({status.value})")
        result = await self.search_messages(query, session_id=session_id, repo=repo, limit=limit)
        hits = tuple(h for h in result.hits if "vec" in h.ranks)
        return SearchResult(tuple(sorted(hits, key=lambda h: h.ranks["vec"])), result.vector)


def _first_of_each_source(messages: Sequence[NewMessage]) -> list[NewMessage]:
    """``messages`` without those whose source id an earlier one carries."""
    seen: set[str] = set()
    out = []
    for m in messages:
        if m.source_id is not None:
            if m.source_id in seen:
                continue
            seen.add(m.source_id)
        out.append(m)
    return out
