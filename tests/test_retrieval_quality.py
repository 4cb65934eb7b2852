"""Retrieval quality on the labelled set, over the real embedded PostgreSQL: recall@5 and MRR of
full text alone, trigram alone, hashing vectors alone, WordLlama vectors alone and the
rehydrator's hybrid with each embedder (the table prints with ``pytest -s``; ``bench/quality.py``
prints the same table from the same code, ``tests/retrieval_support.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio
from pg_support import create_database, drop_database
from retrieval_support import (
    QUERY_KINDS,
    Scores,
    content_words,
    evaluate,
    load_set,
    recall_at,
    reciprocal_rank,
    render_table,
    shared_words,
)

import adapters

RSET = load_set()
HASHING = "hashing-256"
LEARNED = "wordllama-l2_supercat-256"


def test_the_set_is_large_mostly_paraphrased_and_has_every_kind() -> None:
    items = {i.id: i for i in RSET.items}
    assert len(items) >= 150
    assert {i.kind for i in RSET.items} == {
        "decision",
        "note",
        "prompt",
        "reply",
        "worklog",
        "commit",
    }
    assert len({i.session for i in RSET.items}) >= 10
    paraphrases = [q for q in RSET.queries if q.kind == "paraphrase"]
    keywords = [q for q in RSET.queries if q.kind == "keyword"]
    assert len(RSET.queries) >= 60 and len(paraphrases) >= 40 and len(keywords) >= 15
    # a paraphrase shares at most two content words with any of its targets, most share none or one
    overlaps = [shared_words(q, items) for q in paraphrases]
    assert max(overlaps) <= 2
    assert sum(n <= 1 for n in overlaps) >= 0.8 * len(paraphrases)
    # a keyword query shares at least two with one of its targets
    assert min(shared_words(q, items) for q in keywords) >= 2


def test_the_scoring_counts_what_it_says() -> None:
    assert recall_at(["a", "x", "y", "z", "w", "b"], ["a", "b"]) == 0.5
    assert recall_at([], ["a"]) == 0.0
    assert reciprocal_rank(["x", "y", "a", "b"], ["b", "a"]) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x"] * 20 + ["a"], ["a"]) == 0.0
    assert content_words("The tokens, the token!") == {"token"}


@pytest.fixture(scope="module")
def table(pg_url: str) -> Iterator[dict[str, Scores]]:
    """Every row of the quality table, measured once for the module's tests."""
    urls = [create_database(pg_url, "quality") for _ in range(2)]

    async def measure() -> dict[str, Scores]:
        hashing = await evaluate(urls[0], RSET, adapters.HashingEmbedder())
        learned = await evaluate(urls[1], RSET, adapters.WordLlamaEmbedder())
        return {**hashing, **learned}

    try:
        rows = trio.run(measure)
        print("\n" + render_table(rows, RSET))
        yield rows
    finally:
        for url in urls:
            drop_database(url)


def test_the_default_hybrid_beats_full_text(table: dict[str, Scores]) -> None:
    hybrid, fts = table[f"hybrid {LEARNED}"], table["fts"]
    assert hybrid.recall["all"] >= fts.recall["all"] + 0.15
    assert hybrid.recall["keyword"] >= fts.recall["keyword"] - 0.02
    assert hybrid.mrr["all"] > fts.mrr["all"]


def test_the_learned_embedder_beats_hashing_on_paraphrases(table: dict[str, Scores]) -> None:
    assert (
        table[f"vec {LEARNED}"].recall["paraphrase"] > table[f"vec {HASHING}"].recall["paraphrase"]
    )
    assert table[f"vec {LEARNED}"].mrr["paraphrase"] > table[f"vec {HASHING}"].mrr["paraphrase"]
    assert (
        table[f"hybrid {LEARNED}"].recall["paraphrase"]
        > table[f"hybrid {HASHING}"].recall["paraphrase"]
    )


def test_every_row_is_measured_on_every_query_kind(table: dict[str, Scores]) -> None:
    names = {"fts", "trgm", f"vec {HASHING}", f"vec {LEARNED}", f"hybrid {HASHING}"}
    assert names | {f"hybrid {LEARNED}"} == set(table)
    for scores in table.values():
        assert set(scores.recall) == set(scores.mrr) == {"all", *QUERY_KINDS}
        assert all(0.0 <= v <= 1.0 for v in [*scores.recall.values(), *scores.mrr.values()])
