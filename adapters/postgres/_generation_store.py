"""The generation cache's storage in PostgreSQL (table ``memory_generation_cache``).

Similar prompts are found with pg_trgm's ``%`` operator (GIN index) under a transaction-local
``pg_trgm.similarity_threshold``, only among live rows of the same model and settings hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, final

import psycopg
import psycopg.rows

from engine import (
    CachedGeneration,
    GenerationCache,
    NewGeneration,
    check_invalidate_filters,
    check_limit,
    check_text,
)

from ._database import Database
from ._memory_rows import jsonb

__all__ = ["PostgresGenerationStore", "create_generation_cache"]

_COLS = (
    "cache_key, prompt, model, settings_hash, response, created_at,"
    " nullif(expires_at, 'infinity') AS expires_at"
)


def _cached(row: Mapping[str, Any], similarity: float) -> CachedGeneration:
    return CachedGeneration(
        key=row["cache_key"],
        prompt=row["prompt"],
        model=row["model"],
        settings_hash=row["settings_hash"],
        response=row["response"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        similarity=similarity,
    )


@final
class PostgresGenerationStore:
    """:class:`engine.GenerationCacheStore` over a :class:`Database`.

    Cancellation of any call: the statement is cancelled and nothing is written.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_exact(self, key: str) -> CachedGeneration | None:
        """The live entry for ``key``, counting a hit, or ``None``.

        Cancellation: the statement is cancelled; no hit is counted.
        """
        row = await self._db.fetchrow(
            "UPDATE memory_generation_cache SET hits = hits + 1, last_hit_at = now()"
            " WHERE cache_key = %s AND expires_at > now() RETURNING " + _COLS,
            (key,),
        )
        return None if row is None else _cached(row, 1.0)

    async def find_similar(
        self, prompt: str, *, model: str, settings_hash: str, threshold: float, limit: int
    ) -> list[CachedGeneration]:
        """Live entries of the same model and settings at least ``threshold`` similar.

        Cancellation: the query is cancelled.
        """
        check_text("prompt", prompt)
        check_limit(limit)

        def work(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
            conn.execute(
                "SELECT set_config('pg_trgm.similarity_threshold', %s, true)", (str(threshold),)
            )
            with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                cur.execute(
                    "SELECT " + _COLS + ", similarity(prompt, %(p)s) AS sim"
                    " FROM memory_generation_cache WHERE prompt %% %(p)s"
                    " AND model = %(model)s AND settings_hash = %(sh)s AND expires_at > now()"
                    " ORDER BY prompt <-> %(p)s, cache_key LIMIT %(lim)s",
                    {"p": prompt, "model": model, "sh": settings_hash, "lim": limit},
                )
                return cur.fetchall()

        rows = await self._db.run_sync(work)
        return [_cached(row, float(row["sim"])) for row in rows if float(row["sim"]) >= threshold]

    async def record_hit(self, key: str) -> None:
        """Count a hit on ``key``.

        Cancellation: the hit is not counted.
        """
        await self._db.execute(
            "UPDATE memory_generation_cache SET hits = hits + 1, last_hit_at = now()"
            " WHERE cache_key = %s",
            (key,),
        )

    async def put(self, generation: NewGeneration) -> None:
        """Insert or replace an entry.

        Cancellation: nothing is written.
        """
        await self._db.execute(
            "INSERT INTO memory_generation_cache (cache_key, model, settings_hash, settings,"
            " prompt, response, expires_at) VALUES (%(key)s, %(model)s, %(sh)s, %(settings)s,"
            " %(prompt)s, %(response)s,"
            " coalesce(now() + %(ttl)s::float8 * interval '1 second', 'infinity'))"
            " ON CONFLICT (cache_key) DO UPDATE SET response = excluded.response,"
            " settings = excluded.settings, created_at = now(), expires_at = excluded.expires_at,"
            " hits = 0, last_hit_at = NULL",
            {
                "key": generation.key,
                "model": generation.model,
                "sh": generation.settings_hash,
                "settings": jsonb("settings", dict(generation.settings)),
                "prompt": generation.prompt,
                "response": generation.response,
                "ttl": generation.ttl,
            },
        )

    async def invalidate(
        self,
        *,
        key: str | None = None,
        model: str | None = None,
        older_than: float | None = None,
    ) -> int:
        """Delete entries matching every given filter (key, model, created more than
        ``older_than`` seconds ago); return how many.

        Cancellation: nothing is deleted.
        """
        key, model, older_than = check_invalidate_filters(key, model, older_than)
        return await self._db.execute(
            "DELETE FROM memory_generation_cache WHERE"
            " (%(key)s::text IS NULL OR cache_key = %(key)s)"
            " AND (%(model)s::text IS NULL OR model = %(model)s)"
            " AND (%(age)s::float8 IS NULL"
            "      OR created_at <= now() - %(age)s::float8 * interval '1 second')",
            {"key": key, "model": model, "age": older_than},
        )


def create_generation_cache(
    db: Database, *, similarity_threshold: float | None = 0.8, ttl: float | None = None
) -> GenerationCache:
    """A :class:`engine.GenerationCache` stored in ``db``.

    Share the returned object between sessions: single-flight works within one cache object.
    """
    return GenerationCache(
        PostgresGenerationStore(db), similarity_threshold=similarity_threshold, ttl=ttl
    )
