"""The rankings that cost by a table's size follow the planner's statistics (adapters/postgres/
_table_statistics.py): the full-text ranking searches the query's words from the rarest up while
the rows they are estimated to match stay within a budget, and a table past the trigram limit is searched
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


async def test_frequencies_come_from_pg_stats(analysed: str) -> None:
    async with adapters.open_database(analysed, pool_size=2) as db:
        statistics = adapters.TableStatistics(db, match_budget=100)
        facts = await statistics.of("memory_messages")
        assert facts.rows == 300
        assert facts.frequencies["deploy"] == pytest.approx(1.0)
        assert facts.frequencies["servic"] == pytest.approx(1.0)  # PostgreSQL's stem
        assert facts.frequencies.get("zebra7", facts.rarest) < 0.01
        lexemes = await statistics.lexemes(["Deploying", "the", "zebra7"])
        assert lexemes == {"Deploying": ("deploy",), "the": (), "zebra7": ("zebra7",)}
        # From the rarest word up, within the budget; the stop word left out.
        assert facts.selective_words(["Deploying", "the", "zebra7"], lexemes) == ["zebra7"]
        everything = await adapters.TableStatistics(db).of("memory_messages")
        assert everything.selective_words(["Deploying", "the", "zebra7"], lexemes) == [
            "Deploying",
            "zebra7",
        ]  # 300 rows: within the default budget of 2,000
        assert everything.trigram_fits


async def test_common_words_are_left_out_of_full_text(analysed: str) -> None:
    async with adapters.open_database(analysed, pool_size=2) as db:
        plain = await adapters.create_memory_store(db)
        tuned = await adapters.create_memory_store(
            db, statistics=adapters.TableStatistics(db, match_budget=100)
        )
        query = "deploy zebra7"
        before = await plain.search_messages(query, limit=50)
        after = await tuned.search_messages(query, limit=50)
        fts_before = [h for h in before.hits if "fts" in h.ranks]
        fts_after = [h for h in after.hits if "fts" in h.ranks]
        assert len(fts_before) == 50  # "deploy" matches every row
        assert [h.item.content for h in fts_after] == ["deploy the service zebra7 build 7"]
        # A query of common words only: rows must hold all of them (still found by full text),
        # while those are estimated within twice the budget (300 rows here: a budget of 150)
        roomier = await adapters.create_memory_store(
            db, statistics=adapters.TableStatistics(db, match_budget=150)
        )
        only_common = await roomier.search_messages("deploy build", limit=5)
        assert len([h for h in only_common.hits if "fts" in h.ranks]) == 5
        # past that, the full-text ranking is left out (the trigram ranking still finds them)
        left_out = await tuned.search_messages("deploy the service", limit=5)
        assert len(left_out.hits) == 5
        assert all("trgm" in h.ranks and "fts" not in h.ranks for h in left_out.hits)
        kept = await roomier.search_messages("deploy the service", limit=5)
        assert all("fts" in h.ranks for h in kept.hits)


async def test_common_words_alone_must_all_match(analysed: str) -> None:
    async with adapters.open_database(analysed, pool_size=2) as db:
        statistics = adapters.TableStatistics(db, match_budget=100)
        facts = await statistics.of("memory_messages")
        words = ["deploy", "or", "zebra7"]
        lexemes = await statistics.lexemes(words)
        assert facts.full_text_query(words, lexemes) == "zebra7"
        words = ["deploy", "service", "or"]
        lexemes = await statistics.lexemes(words)
        assert facts.full_text_query(words, lexemes) == ""  # 300 rows hold both: > 2 x 100
        halfway = await adapters.TableStatistics(db, match_budget=150).of("memory_messages")
        assert halfway.full_text_query(words, lexemes) == '"deploy" "service"'
        roomy = await adapters.TableStatistics(db).of("memory_messages")
        assert roomy.full_text_query(words, lexemes) == "deploy or service"
        # two common words and a rare one: the rows holding all three are few
        words = ["deploy", "service", "zebra7"]
        lexemes = await statistics.lexemes(words)
        assert facts.full_text_query(words, lexemes) == "zebra7"
        store = await adapters.create_memory_store(db, statistics=statistics)
        # "service" and "build" are in every row, but only row 7 also holds "7"
        hits = (await store.search_messages("service build 7", limit=3)).hits
        assert hits[0].item.content == "deploy the service zebra7 build 7"


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
            adapters.TableStatistics(db, match_budget=0)
        with pytest.raises(InvalidArgumentError):
            adapters.TableStatistics(db, trigram_max_rows=-1)
