"""The hot memory searches use their indexes: EXPLAIN (FORMAT JSON) of each ranking statement the
store runs (messages and decisions; full text, trigram, vector; session- and repository-scoped).

The tables hold a few thousand generated rows (loaded once for the module, then VACUUM ANALYZE:
the GIN indexes' pending lists merged, as autovacuum does); at that size a sequential scan is
cheaper than any index, so the plans are read with ``enable_seqscan = off`` (and
``enable_sort = off`` for the vector ranking, whose index answers the ORDER BY): the question is
whether the index can serve the statement as written (expression, predicate, operator), not what
the planner prefers on a small table. ``bench/memory.py --scale`` shows the plans chosen freely at
a million messages.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any, LiteralString

import psycopg
import pytest
import trio
from memory_support import open_store
from pg_support import create_database, drop_database

import adapters
from adapters.postgres._memory_ranking import _ranking_sql, fts_query_text, vector_literal
from adapters.postgres._memory_rows import DEC_COLS, MSG_COLS, scope_filter
from adapters.postgres._memory_vector_index import ensure_vector_indexes, vector_index_name
from engine import NewDecision, NewMessage

# Made-up identifiers, so that trigrams are as selective as words (as in real code and prose).
_POOL = random.Random(11)
_WORDS = [
    "".join(_POOL.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(7)) for _ in range(2000)
]
_EMBEDDER = adapters.HashingEmbedder(64)


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def _index_names(plan: Any) -> Iterator[str]:
    if isinstance(plan, dict):
        if "Index Name" in plan:
            yield plan["Index Name"]
        for value in plan.values():
            yield from _index_names(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from _index_names(value)


async def _load(url: str) -> None:
    """Session s0 (repository /repo/0) holds most rows, so a search scoped to it is answered
    best from the search index, not by reading the scope's rows."""
    rng = random.Random(3)
    async with open_store(url, embedder=_EMBEDDER) as (db, store):
        for i, batches in enumerate((60, 4, 4, 4)):
            sid = f"s{i}"
            await store.ensure_session(sid, repo=f"/repo/{min(i, 1)}")
            for _ in range(batches):
                await store.add_messages(
                    sid, [NewMessage("user", _text(rng, 12)) for _ in range(50)]
                )
            for _ in range(batches * 4):
                old = await store.add_decision(
                    NewDecision(_text(rng, 4), _text(rng, 12), session_id=sid)
                )
                await store.supersede_decision(
                    old.id, NewDecision(_text(rng, 4), _text(rng, 12), session_id=sid)
                )
        await db.execute("VACUUM ANALYZE")
        # the model's IVFFlat indexes, which a table gets at 10,000 rows, made for these few
        await ensure_vector_indexes(db, _EMBEDDER.model, 64, min_rows=0)


@pytest.fixture(scope="module")
def loaded(pg_url: str) -> Iterator[str]:
    url = create_database(pg_url, "explain")
    try:
        trio.run(_load, url)
        yield url
    finally:
        drop_database(url)


_TABLES: dict[str, tuple[LiteralString, LiteralString, LiteralString, LiteralString]] = {
    "messages": ("memory_messages", "m", MSG_COLS, "content"),
    "decisions": ("memory_decisions", "d", DEC_COLS, "search_text"),
}
_EXPECTED = {
    ("messages", "fts"): "memory_messages_tsv",
    ("messages", "trgm"): "memory_messages_trgm",
    ("messages", "vec"): "memory_msg_ivf",
    ("decisions", "fts"): "memory_decisions_live_tsv",
    ("decisions", "trgm"): "memory_decisions_live_trgm",
    ("decisions", "vec"): "memory_dec_ivf",
}


@pytest.mark.parametrize("scope", ["session", "repo"])
@pytest.mark.parametrize(("family", "ranking"), sorted(_EXPECTED))
def test_hot_searches_use_their_indexes(loaded: str, family: str, ranking: str, scope: str) -> None:
    table, alias, cols, text_col = _TABLES[family]
    filters = scope_filter(alias, session=scope == "session", repo=scope == "repo")
    if family == "decisions":
        filters += " AND d.status <> 'superseded'"
    query = _WORDS[12]
    [vector] = trio.run(_EMBEDDER.embed, [query])
    statement = _ranking_sql(
        ranking, table, alias, cols, text_col, filters=filters, model=_EMBEDDER.model, dims=64
    )
    params = {
        "q": query,
        "fts": fts_query_text(query),
        "lim": 20,
        "sid": "s0",
        "repo": "/repo/0",
        "vec": vector_literal(vector),
        "vmin": 0.0,
    }
    with psycopg.connect(loaded, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        if ranking == "vec":  # as the store's vector ranking sets them
            conn.execute("SET enable_sort = off")
            conn.execute("SET ivfflat.iterative_scan = relaxed_order")
            conn.execute("SET ivfflat.max_probes = 4")
        explain = psycopg.sql.SQL("EXPLAIN (FORMAT JSON) ") + statement
        [[plan]] = conn.execute(explain, params).fetchall()
        rows = conn.execute(statement, params).fetchall()
    used = set(_index_names(plan if isinstance(plan, list) else json.loads(plan)))
    expected = _EXPECTED[family, ranking]
    if ranking == "vec":  # the model's IVFFlat index, of however many lists the rows gave it
        [lists] = [int(u.removeprefix(expected).split("_")[0]) for u in used if expected in u]
        expected = vector_index_name(table, _EMBEDDER.model, 64, lists)
    assert expected in used, json.dumps(plan, indent=1)
    assert rows  # the statement as planned finds rows of the scope


@pytest.mark.parametrize("table", ["memory_messages", "memory_decisions"])
def test_the_embedding_backlog_is_found_through_indexes(loaded: str, table: str) -> None:
    # The background embedder looks at its backlog every few seconds: a scan of the table each
    # time would cost seconds at a million rows. Its backlog, rows of another model than the
    # current one and rows with none, is small when the table is not: every row here is of it.
    from adapters.postgres._embedding_backfill import (
        _TABLES,
        backlog_batch_sql,
        backlog_count_sql,
    )

    short = table.removeprefix("memory_")
    params = {"model": _EMBEDDER.model, "lim": 256}
    with psycopg.connect(loaded, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        for statement in (backlog_count_sql(table), backlog_batch_sql(table, _TABLES[table])):
            [[plan]] = conn.execute("EXPLAIN (FORMAT JSON) " + statement, params).fetchall()
            text = plan if isinstance(plan, str) else json.dumps(plan)
            used = set(_index_names(json.loads(text)))
            # No scan of the table: the model index (and the partial one of rows with no model).
            assert f"memory_{short}_embedding_model" in used, text
            assert used <= {f"memory_{short}_embedding_model", f"memory_{short}_unembedded"}, text
            assert '"Seq Scan"' not in text, text
        # and they count what they should, rows of another model too
        conn.execute(f"UPDATE {table} SET embedding_model = 'old' WHERE id % 10 = 0")
        [count] = conn.execute(backlog_count_sql(table), params).fetchone() or [None]
        [exact] = conn.execute(
            f"SELECT count(*) FROM {table} WHERE expires_at > now()"
            " AND embedding_model IS DISTINCT FROM %(model)s",
            params,
        ).fetchone() or [None]
        conn.execute(f"UPDATE {table} SET embedding_model = %(model)s WHERE id %% 10 = 0", params)
        assert count == exact and exact
