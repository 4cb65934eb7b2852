"""Helpers for the memory tests: a store over the shared test database, unique session ids."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import psycopg

import adapters
import engine


def new_session_id(prefix: str = "mem") -> str:
    """A session id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@contextlib.asynccontextmanager
async def open_store(
    url: str, *, embedder: engine.Embedder | None = None, min_vector_similarity: float = 0.0
) -> AsyncIterator[tuple[adapters.Database, adapters.PostgresMemoryStore]]:
    """The database at ``url`` (migrated) and a memory store over it."""
    async with adapters.open_database(url, pool_size=4) as db:
        yield (
            db,
            await adapters.create_memory_store(
                db, embedder=embedder, min_vector_similarity=min_vector_similarity
            ),
        )


async def backdate(
    db: adapters.Database, table: str, seconds: float, where: str, *params: object
) -> None:
    """Move the expiries of the rows of ``table`` matching ``where`` back by ``seconds`` (as if
    that much time had passed), without deleting anything."""
    await db.execute(
        psycopg.sql.SQL(
            "UPDATE {} SET expires_at = expires_at - %s * interval '1 second'"
            " WHERE expires_at <> 'infinity' AND " + where  # type: ignore[operator]
        ).format(psycopg.sql.Identifier(table)),
        (seconds, *params),
    )


async def count_rows(db: adapters.Database, table: str, where: str, *params: object) -> int:
    """Rows of ``table`` matching ``where`` regardless of expiry (what is physically there)."""
    value = await db.fetchval(
        psycopg.sql.SQL("SELECT count(*) FROM {} WHERE " + where).format(  # type: ignore[arg-type]
            psycopg.sql.Identifier(table)
        ),
        params,
    )
    return int(value)
