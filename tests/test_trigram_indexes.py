"""The trigram indexes follow the trigram ranking: a table past twice the rows the ranking allows
loses them (inserts no longer pay for an index no search reads), one back within the limit gets
them again, one in between is left as it is, and a store ranking every table by trigrams keeps
them all."""

from __future__ import annotations

from pg_support import create_database, drop_database

import adapters
import engine
from adapters.postgres._trigram_indexes import TRIGRAM_INDEXES

_PRESENT = (
    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " WHERE c.relname = ANY(%s) AND i.indisvalid ORDER BY 1"
)
_ALL = sorted(TRIGRAM_INDEXES)


async def _present(db: adapters.Database) -> list[str]:
    return [r["relname"] for r in await db.fetch(_PRESENT, (_ALL,))]


async def test_a_table_too_big_for_trigrams_loses_its_trigram_index_and_gets_it_back(
    pg_url: str,
) -> None:
    url = create_database(pg_url, "trgmfit")
    try:
        async with adapters.open_database(url, pool_size=4) as db:
            statistics = adapters.TableStatistics(db, trigram_max_rows=100)
            store = await adapters.create_memory_store(db, statistics=statistics)
            assert await _present(db) == _ALL  # empty tables: every index stays
            await store.add_messages(
                "big", [engine.NewMessage("user", f"note number {i}") for i in range(150)]
            )
            await db.execute("ANALYZE memory_messages")
            assert await store.fit_trigram_indexes() == []  # 150 rows: within twice the limit
            await store.add_messages(
                "big", [engine.NewMessage("user", f"more notes {i}") for i in range(100)]
            )
            await db.execute("ANALYZE memory_messages")
            assert await store.fit_trigram_indexes() == ["dropped memory_messages_trgm"]
            assert await _present(db) == [n for n in _ALL if n != "memory_messages_trgm"]
            # searches go on without the trigram ranking, as the statistics say
            found = await store.search_messages("note number 7", session_id="big", limit=5)
            assert found.hits and all("trgm" not in h.ranks for h in found.hits)
            # retention shrinks the table: within the limit, the index is built again
            await db.execute("DELETE FROM memory_messages WHERE id % 5 <> 0")
            await db.execute("ANALYZE memory_messages")
            assert await store.fit_trigram_indexes() == ["built memory_messages_trgm"]
            assert await _present(db) == _ALL
            # a store that ranks every table by trigrams keeps every index
            await store.add_messages(
                "big", [engine.NewMessage("user", f"again {i}") for i in range(400)]
            )
            await db.execute("ANALYZE memory_messages")
            always = await adapters.create_memory_store(
                db, statistics=adapters.TableStatistics(db, trigram_max_rows=None)
            )
            assert await always.fit_trigram_indexes() == []
            assert await _present(db) == _ALL
    finally:
        drop_database(url)


async def test_the_sweep_fits_the_trigram_indexes(pg_url: str) -> None:
    url = create_database(pg_url, "trgmfit")
    try:
        async with adapters.open_database(url, pool_size=4) as db:
            statistics = adapters.TableStatistics(db, trigram_max_rows=10)
            store = await adapters.create_memory_store(db, statistics=statistics)
            await store.add_messages(
                "s", [engine.NewMessage("user", f"line {i}", ttl=3600) for i in range(50)]
            )
            await db.execute("ANALYZE memory_messages")
            await store.sweep_expired()
            assert "memory_messages_trgm" not in await _present(db)
            await db.execute("UPDATE memory_messages SET expires_at = now() - interval '1 s'")
            await store.sweep_expired()  # every row expired: deleted, then the index is back
            await db.execute("ANALYZE memory_messages")
            await store.sweep_expired()
            assert "memory_messages_trgm" in await _present(db)
    finally:
        drop_database(url)
