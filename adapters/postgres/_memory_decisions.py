"""Decisions in PostgreSQL (table ``memory_decisions``): record, close, supersede, follow the chain, search."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, LiteralString

import psycopg
import psycopg.rows

from engine import (
    QUERY_MAX,
    Decision,
    DecisionStateError,
    DecisionStatus,
    InvalidArgumentError,
    MemoryNotFoundError,
    NewDecision,
    SearchResult,
    check_limit,
    check_repo,
    check_text,
)

from ._memory_ranking import MemoryTables
from ._memory_rows import DEC_COLS, ENSURE_SESSION, EXPIRY, decision_row, scope_filter

__all__ = ["MemoryDecisions"]


class MemoryDecisions(MemoryTables):
    """Decisions and their supersession chains."""

    async def _prepare(self, decision: NewDecision) -> tuple[dict[str, Any], str | None]:
        """The insert parameters of a new decision and its embedding (computed before any write)."""
        if not isinstance(decision, NewDecision):
            raise InvalidArgumentError(f"expected NewDecision, got {type(decision).__name__}")
        embedded = await self._embed([f"{decision.title}\n{decision.body}"])
        return self._decision_params(decision), None if embedded is None else embedded[0]

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
                ENSURE_SESSION,
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
                + EXPIRY.format(ttl="%(ttl)s")
                + emb_vals
                + ") RETURNING "
                + DEC_COLS,
                values,
            )
            row = cur.fetchone()
        assert row is not None
        return decision_row(row)

    async def add_decision(self, decision: NewDecision) -> Decision:
        """Record a decision (its session is created if missing).

        Cancellation: nothing is written.
        """
        params, embedding = await self._prepare(decision)
        return await self._db.run_sync(lambda conn: self._insert_decision(conn, params, embedding))

    async def get_decision(self, decision_id: int) -> Decision:
        """A live decision (any status).

        Raises:
            MemoryNotFoundError: No such live decision.

        Cancellation: the query is cancelled.
        """
        row = await self._db.fetchrow(
            "SELECT " + DEC_COLS + " FROM memory_decisions d WHERE d.id = %s"
            " AND d.expires_at > now()",
            (decision_id,),
        )
        if row is None:
            raise MemoryNotFoundError(f"no live decision {decision_id}")
        return decision_row(row)

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
                    " WHERE d.id = %s RETURNING " + DEC_COLS,
                    (decision_id,),
                )
                row = cur.fetchone()
            assert row is not None
            return decision_row(row)

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
        params, embedding = await self._prepare(replacement)

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
            " SELECT " + DEC_COLS + ", chain.depth FROM chain JOIN memory_decisions d"
            " ON d.id = chain.id WHERE d.expires_at > now() ORDER BY chain.depth",
            {"id": decision_id},
        )
        if not any(r["id"] == decision_id for r in rows):
            raise MemoryNotFoundError(f"no live decision {decision_id}")
        return [decision_row(r) for r in rows]

    async def open_decisions(
        self, *, session_id: str | None = None, repo: str | None = None, limit: int = 20
    ) -> list[Decision]:
        """The live open decisions of one session, of the sessions carrying ``repo``, or (both
        given) of either, newest first, at most ``limit``.

        Cancellation: the query is cancelled.
        """
        check_limit(limit)
        if session_id is not None:
            check_text("session_id", session_id)
        check_repo(repo)
        filters = scope_filter("d", session=session_id is not None, repo=repo is not None)
        rows = await self._db.fetch(
            "SELECT " + DEC_COLS + " FROM memory_decisions d"
            " WHERE d.expires_at > now() AND d.status = 'open'" + filters
            + " ORDER BY d.created_at DESC, d.id DESC LIMIT %(limit)s",
            {"sid": session_id, "repo": repo, "limit": limit},
        )
        return [decision_row(r) for r in rows]

    async def search_decisions(
        self,
        query: str,
        *,
        session_id: str | None = None,
        repo: str | None = None,
        include_superseded: bool = False,
        limit: int = 20,
    ) -> SearchResult[Decision]:
        """Search live decisions (title and body) by full text, trigram and vector similarity, of
        one session, of the sessions carrying ``repo``, or (both given) of either.

        Superseded decisions are left out unless ``include_superseded``.

        Cancellation: the query is cancelled.
        """
        check_text("query", query, maximum=QUERY_MAX)
        check_limit(limit)
        if session_id is not None:
            check_text("session_id", session_id)
        check_repo(repo)
        filters = scope_filter("d", session=session_id is not None, repo=repo is not None)
        if not include_superseded:
            filters += " AND d.status <> 'superseded'"
        return await self._search(
            "memory_decisions",
            "d",
            DEC_COLS,
            "search_text",
            decision_row,
            query,
            filters=filters,
            params={"sid": session_id, "repo": repo},
            limit=limit,
        )
