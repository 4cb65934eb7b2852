"""Loading what memory searches read into the server's buffer cache when the daemon starts.

After a restart every page comes from the kernel's cache, or from the disk when the host has
reclaimed that (measured at a million messages: rehydrate p95 192 ms on a just-started server whose
pages had been evicted, against 115-123 ms once they were read). :func:`prewarm_memory` loads, in
this order and while they fit in three quarters of ``shared_buffers``: the model's vector indexes,
the full-text indexes, then the newest blocks of the decisions and messages tables (rows are
appended, so the newest are at the end, and they are what is searched most).
"""

from __future__ import annotations

from typing import Final

from ._database import Database
from ._memory_vector_index import has_prewarm, prewarm_vector_indexes

__all__ = ["prewarm_memory"]

_FULL_TEXT: Final = ("memory_messages_tsv", "memory_decisions_live_tsv")
_TABLES: Final = ("memory_decisions", "memory_messages")


async def prewarm_memory(db: Database, model: str | None, dims: int | None) -> int:
    """Load the model's vector indexes (``model`` None: none), the full-text indexes and the
    newest blocks of the memory tables into the buffer cache with ``pg_prewarm``, within three
    quarters of it; answers the 8 kB blocks loaded (0 without ``pg_prewarm``).

    Cancellation: the load is cancelled on the server; what it loaded stays cached.
    """
    if not await has_prewarm(db):
        return 0
    loaded = (
        0
        if model is None or dims is None
        else await prewarm_vector_indexes(db, model, dims, checked=True)
    )
    cache = int(
        await db.fetchval("SELECT setting::bigint FROM pg_settings WHERE name = 'shared_buffers'")
    )
    budget = cache * 3 // 4 - loaded
    for relation in _FULL_TEXT + _TABLES:
        blocks = int(
            await db.fetchval(
                "SELECT coalesce(pg_relation_size(to_regclass(%s)), 0) / 8192", (relation,)
            )
        )
        take = min(blocks, budget)
        if take <= 0:
            continue
        loaded += int(
            await db.fetchval(
                "SELECT pg_prewarm(%s::regclass, 'buffer', 'main', %s, %s)",
                (relation, blocks - take, blocks - 1),
            )
        )
        budget -= take
    return loaded
