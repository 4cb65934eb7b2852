"""The rankings that cost by a table's size follow the planner's statistics (adapters/postgres/
_table_statistics.py): query words made only of lexemes too common to help are left out of the
full-text ranking (unless every word is one), and a table past the trigram limit is searched
without the trigram ranking. The limits are lowered so that a few hundred real rows, analysed by
PostgreSQL, cross them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio
from pg_support import create_database, drop_database

import adapters
from engine import InvalidArgumentError, NewMessage


async def _load(url: str) -> None:
    async with adapters.open_database(url, pool_size=2) as db:
        store = await adapters.create_memory_store(db)
        # "deploy" is in every message; each "zebra<i>" word in one.
        await store.add_messages(
            "stats",
            [NewMessage("user", f"deploy the service zebra{i} build {i}") for i in range(300)],
        )
        await db.execute("ANALYZE memory_messages")


@pytest.fixture(scope="module")
def analysed(pg_url: str) -> Iterator[str]:
    url = create_database(pg_url, "stats")
    try:
        trio.run(_load, url)
        yield url
    finally:
        drop_database(url)


async def test_common_lexemes_come_from_pg_stats(analysed: str) -> None:
    async with adapters.open_database(analysed, pool_size=2) as db:
        facts = await adapters.TableStatistics(db, max_matching_rows=100).of("memory_messages")
        assert facts.rows == 300
        assert {"deploy", "servic", "build"} <= set(facts.common_lexemes)
        assert not any(lexeme.startswith("zebra") for lexeme in facts.common_lexemes)
        default = await adapters.TableStatistics(db).of("memory_messages")
        assert default.common_lexemes == []  # 300 rows: no lexeme matches 10,000
        assert default.trigram_fits


async def test_common_words_are_left_out_of_full_text(analysed: str) -> None:
    async with adapters.open_database(analysed, pool_size=2) as db:
        plain = await adapters.create_memory_store(db)
        tuned = await adapters.create_memory_store(
            db, statistics=adapters.TableStatistics(db, max_matching_rows=100)
        )
        query = "deploy zebra7"
        before = await plain.search_messages(query, limit=50)
        after = await tuned.search_messages(query, limit=50)
        fts_before = [h for h in before.hits if "fts" in h.ranks]
        fts_after = [h for h in after.hits if "fts" in h.ranks]
        assert len(fts_before) == 50  # "deploy" matches every row
        assert [h.item.content for h in fts_after] == ["deploy the service zebra7 build 7"]
        # A query of common words only keeps them: rows are still found by full text.
        only_common = await tuned.search_messages("deploy build", limit=5)
        assert len([h for h in only_common.hits if "fts" in h.ranks]) == 5


async def test_trigram_is_left_out_past_its_limit(analysed: str) -> None:
    async with adapters.open_database(analysed, pool_size=2) as db:
        small = await adapters.create_memory_store(db)
        big = await adapters.create_memory_store(
            db, statistics=adapters.TableStatistics(db, trigram_max_rows=299)
        )
        typo = "zebra1 biuld"
        with_trigram = await small.search_messages(typo, limit=5)
        without = await big.search_messages(typo, limit=5)
        assert any("trgm" in h.ranks for h in with_trigram.hits)
        assert without.hits and not any("trgm" in h.ranks for h in without.hits)


async def test_limits_are_checked(analysed: str) -> None:
    async with adapters.open_database(analysed, pool_size=2) as db:
        with pytest.raises(InvalidArgumentError):
            adapters.TableStatistics(db, max_matching_rows=0)
        with pytest.raises(InvalidArgumentError):
            adapters.TableStatistics(db, trigram_max_rows=-1)
