"""User preferences (table ``memory_preferences``) and the rehydrator's retrieval cache (table
``memory_retrieval_cache``) in PostgreSQL: the two key-value families of memory."""

from __future__ import annotations

from typing import Any

from engine import Preference, check_confidence, check_text, check_ttl

from ._memory_ranking import MemoryTables
from ._memory_rows import EXPIRY, PREF_COLS, jsonb, preference_row

__all__ = ["MemoryPreferences", "MemoryRetrievalCache"]


class MemoryPreferences(MemoryTables):
    """User preferences with confidence, source and usage counts."""

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
        check_text("user_id", user_id)
        check_text("key", key)
        check_text("source", source)
        ttl = check_ttl(ttl)
        confidence = check_confidence(confidence)
        row = await self._db.fetchrow(
            "INSERT INTO memory_preferences AS p (user_id, key, value, confidence, source,"
            " expires_at) VALUES (%(user)s, %(key)s, %(value)s, %(conf)s, %(source)s, "
            + EXPIRY.format(ttl="%(ttl)s")
            + ") ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value,"
            " confidence = excluded.confidence, source = excluded.source,"
            " expires_at = excluded.expires_at, updated_at = now(),"
            " usage_count = CASE WHEN p.expires_at > now() THEN p.usage_count ELSE 0 END,"
            " last_used_at = CASE WHEN p.expires_at > now() THEN p.last_used_at END,"
            " created_at = CASE WHEN p.expires_at > now() THEN p.created_at ELSE now() END"
            " RETURNING " + PREF_COLS,
            {
                "user": user_id,
                "key": key,
                "value": jsonb("value", value),
                "conf": confidence,
                "source": source,
                "ttl": ttl,
            },
        )
        assert row is not None
        return preference_row(row)

    async def get_preference(
        self, user_id: str, key: str, *, record_use: bool = True
    ) -> Preference | None:
        """The live preference, counting one use unless ``record_use`` is false.

        Cancellation: nothing is counted.
        """
        check_text("user_id", user_id)
        check_text("key", key)
        if record_use:
            row = await self._db.fetchrow(
                "UPDATE memory_preferences SET usage_count = usage_count + 1,"
                " last_used_at = now() WHERE user_id = %s AND key = %s AND expires_at > now()"
                " RETURNING " + PREF_COLS,
                (user_id, key),
            )
        else:
            row = await self._db.fetchrow(
                "SELECT " + PREF_COLS + " FROM memory_preferences WHERE user_id = %s"
                " AND key = %s AND expires_at > now()",
                (user_id, key),
            )
        return None if row is None else preference_row(row)

    async def list_preferences(
        self, user_id: str, *, min_confidence: float = 0.0
    ) -> list[Preference]:
        """Live preferences of a user, most confident first (then most used).

        Cancellation: the query is cancelled.
        """
        check_text("user_id", user_id)
        rows = await self._db.fetch(
            "SELECT " + PREF_COLS + " FROM memory_preferences WHERE user_id = %s"
            " AND confidence >= %s AND expires_at > now()"
            " ORDER BY confidence DESC, usage_count DESC, key",
            (user_id, min_confidence),
        )
        return [preference_row(r) for r in rows]


class MemoryRetrievalCache(MemoryTables):
    """Retrieval-cache entries (a :class:`engine.RetrievalCache`), each with a time to live."""

    async def cache_get(self, key: str) -> Any | None:
        """A live retrieval-cache value, or ``None``.

        Cancellation: the query is cancelled.
        """
        check_text("key", key)
        return await self._db.fetchval(
            "SELECT value FROM memory_retrieval_cache WHERE cache_key = %s AND expires_at > now()",
            (key,),
        )

    async def cache_put(self, key: str, value: Any, *, ttl: float) -> None:
        """Store a retrieval-cache value for ``ttl`` seconds (replacing any previous one).

        Cancellation: nothing is written.
        """
        check_text("key", key)
        check_ttl(ttl, required=True)
        await self._db.execute(
            "INSERT INTO memory_retrieval_cache (cache_key, value, expires_at)"
            " VALUES (%(key)s, %(value)s, now() + %(ttl)s::float8 * interval '1 second')"
            " ON CONFLICT (cache_key) DO UPDATE SET value = excluded.value,"
            " created_at = now(), expires_at = excluded.expires_at",
            {"key": key, "value": jsonb("value", value), "ttl": ttl},
        )
