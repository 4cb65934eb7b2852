"""Context facts in PostgreSQL (table ``memory_context_facts``), keyed by session, type and key."""

from __future__ import annotations

from typing import Any

import psycopg
import psycopg.rows

from engine import ContextFact, check_fact_scope, check_text, check_ttl

from ._memory_ranking import MemoryTables
from ._memory_rows import ENSURE_SESSION, EXPIRY, FACT_COLS, fact_row, jsonb

__all__ = ["MemoryFacts"]


def _check_fact_key(session_id: str, fact_type: str, key: str) -> None:
    check_text("session_id", session_id)
    check_text("fact_type", fact_type)
    check_text("key", key)


class MemoryFacts(MemoryTables):
    """Context facts: set, get, list, delete."""

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
        _check_fact_key(session_id, fact_type, key)
        check_ttl(ttl)
        params = {
            "sid": session_id,
            "type": fact_type,
            "key": key,
            "value": jsonb("value", value),
            "pinned": bool(pinned),
            "ttl": ttl,
        }

        def work(conn: psycopg.Connection[Any]) -> ContextFact:
            conn.execute(
                ENSURE_SESSION,
                (session_id,),
            )
            with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                cur.execute(
                    "INSERT INTO memory_context_facts AS f"
                    " (session_id, fact_type, key, value, pinned, expires_at)"
                    " VALUES (%(sid)s, %(type)s, %(key)s, %(value)s, %(pinned)s, "
                    + EXPIRY.format(ttl="%(ttl)s")
                    + ") ON CONFLICT (session_id, fact_type, key) DO UPDATE SET"
                    " value = excluded.value, pinned = excluded.pinned,"
                    " expires_at = excluded.expires_at, updated_at = now(),"
                    " created_at = CASE WHEN f.expires_at > now() THEN f.created_at ELSE now() END"
                    " RETURNING " + FACT_COLS,
                    params,
                )
                row = cur.fetchone()
            assert row is not None
            return fact_row(row)

        return await self._db.run_sync(work)

    async def get_fact(self, session_id: str, fact_type: str, key: str) -> ContextFact | None:
        """The live fact, or ``None``.

        Cancellation: the query is cancelled.
        """
        _check_fact_key(session_id, fact_type, key)
        row = await self._db.fetchrow(
            "SELECT " + FACT_COLS + " FROM memory_context_facts WHERE session_id = %s"
            " AND fact_type = %s AND key = %s AND expires_at > now()",
            (session_id, fact_type, key),
        )
        return None if row is None else fact_row(row)

    async def list_facts(
        self,
        session_id: str | None,
        *,
        repo: str | None = None,
        fact_type: str | None = None,
        pinned_only: bool = False,
    ) -> list[ContextFact]:
        """Live facts of a session, of the sessions carrying ``repo``, or (both given) of either,
        pinned first, then by type, key and session.

        Cancellation: the query is cancelled.
        """
        check_fact_scope(session_id, repo)
        if fact_type is not None:
            check_text("fact_type", fact_type)
        rows = await self._db.fetch(
            "SELECT " + FACT_COLS + " FROM memory_context_facts f"
            " WHERE (f.session_id = %(sid)s OR f.session_id IN"
            " (SELECT session_id FROM memory_sessions WHERE repo = %(repo)s))"
            " AND (%(type)s::text IS NULL OR fact_type = %(type)s)"
            " AND (pinned OR NOT %(pinned_only)s) AND expires_at > now()"
            " ORDER BY pinned DESC, fact_type, key, session_id",
            {
                "sid": session_id,
                "repo": repo,
                "type": fact_type,
                "pinned_only": pinned_only,
            },
        )
        return [fact_row(r) for r in rows]

    async def delete_fact(self, session_id: str, fact_type: str, key: str) -> bool:
        """Delete a fact; ``True`` when a live one existed.

        Cancellation: nothing is deleted.
        """
        _check_fact_key(session_id, fact_type, key)
        row = await self._db.fetchval(
            "WITH gone AS (DELETE FROM memory_context_facts WHERE session_id = %s"
            " AND fact_type = %s AND key = %s RETURNING expires_at > now() AS live)"
            " SELECT coalesce(bool_or(live), false) FROM gone",
            (session_id, fact_type, key),
        )
        return bool(row)
