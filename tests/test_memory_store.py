"""Conversation memory over the real (embedded) PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest
import trio
from memory_support import backdate, count_rows, new_session_id, open_store
from pg_support import create_database, drop_database

import adapters
import engine
from engine import DecisionStatus, NewDecision, NewMessage, VectorStatus

# ------------------------------------------------------------------------------------- messages


async def test_messages_are_numbered_in_order_and_hashed(pg_url: str) -> None:
    sid = new_session_id()
    async with open_store(pg_url) as (_, store):
        first = await store.add_messages(
            sid,
            [NewMessage("user", "hello there"), NewMessage("assistant", "hi", metadata={"k": 1})],
        )
        second = await store.add_message(sid, "tool", "ran tests: 3 passed")
        assert [m.seq for m in first] == [1, 2]
        assert second.seq == 3
        assert first[1].metadata == {"k": 1}
        assert first[0].content_hash == engine.content_hash("hello there")
        assert first[0].expires_at is None
        got = await store.get_messages(sid)
        assert [m.content for m in got] == ["hello there", "hi", "ran tests: 3 passed"]
        newest = await store.get_messages(sid, limit=2)
        assert [m.seq for m in newest] == [2, 3]
        assert [m.seq for m in await store.get_messages(sid, after_seq=2)] == [3]


async def test_concurrent_appends_get_distinct_sequence_numbers(pg_url: str) -> None:
    sid = new_session_id()
    async with open_store(pg_url) as (_, store):
        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(store.add_message, sid, "user", f"message {i}")
        got = await store.get_messages(sid)
        assert sorted(m.seq for m in got) == list(range(1, 21))


async def test_bad_message_input_is_a_typed_error(pg_url: str) -> None:
    with pytest.raises(engine.InvalidArgumentError, match="role"):
        NewMessage("robot", "x")
    with pytest.raises(engine.InvalidArgumentError, match="content"):
        NewMessage("user", "")
    with pytest.raises(engine.InvalidArgumentError, match="ttl"):
        NewMessage("user", "x", ttl=0)
    async with open_store(pg_url) as (_, store):
        with pytest.raises(engine.InvalidArgumentError):
            await store.add_message("", "user", "x")
        with pytest.raises(engine.InvalidArgumentError, match="JSON"):
            await store.add_message("s", "user", "x", metadata={"bad": object()})
        with pytest.raises(engine.InvalidArgumentError):
            await store.search_messages("x", limit=0)


async def test_search_ranks_by_full_text_and_trigram(pg_url: str) -> None:
    sid = new_session_id()
    async with open_store(pg_url) as (_, store):
        await store.add_messages(
            sid,
            [
                NewMessage("user", "The rehydrator should query sources in parallel"),
                NewMessage("assistant", "Parallel querying of sources keeps latency low"),
                NewMessage("user", "Unrelated: lunch at noon"),
                NewMessage("user", "rehydratr typo but close"),
            ],
        )
        result = await store.search_messages("rehydrator parallel sources", session_id=sid)
        assert result.vector is VectorStatus.NO_EMBEDDER
        contents = [h.item.content for h in result.hits]
        assert contents[0] == "The rehydrator should query sources in parallel"
        assert "Unrelated: lunch at noon" not in contents
        assert all(h.item.session_id == sid for h in result.hits)
        assert all(set(h.ranks) <= {"fts", "trgm"} and h.ranks for h in result.hits)
        # trigram finds the misspelt one that full text cannot
        typo = await store.search_messages("rehydratr", session_id=sid)
        assert any(h.item.content.startswith("rehydratr") for h in typo.hits)


async def test_vector_search_with_an_embedder(pg_url: str) -> None:
    sid = new_session_id()
    embedder = adapters.HashingEmbedder(64)
    async with open_store(pg_url, embedder=embedder) as (_, store):
        assert store.vector_status is VectorStatus.USED
        await store.add_messages(
            sid,
            [
                NewMessage("user", "deployment pipeline for kubernetes clusters"),
                NewMessage("user", "a recipe for apple pie"),
            ],
        )
        result = await store.vector_search_messages("kubernetes deployment", session_id=sid)
        assert result.vector is VectorStatus.USED
        assert result.hits[0].item.content.startswith("deployment pipeline")
        assert result.hits[0].ranks["vec"] == 1
        combined = await store.search_messages("kubernetes", session_id=sid)
        assert "vec" in combined.hits[0].ranks


async def test_without_pgvector_vector_search_is_reported_unavailable(pg_url: str) -> None:
    # A database migrated with vectors off has no vector columns: the same code path as a server
    # without pgvector. Everything else keeps working.
    url = create_database(pg_url, prefix="novec")
    try:
        dbname = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                psycopg.sql.SQL("ALTER DATABASE {} SET scribe.memory_vector = 'off'").format(
                    psycopg.sql.Identifier(str(dbname))
                )
            )
        async with open_store(url, embedder=adapters.HashingEmbedder(32)) as (db, store):
            assert store.vector_status is VectorStatus.UNAVAILABLE
            with pytest.raises(engine.VectorSearchUnavailableError):
                await store.vector_search_messages("anything")
            await store.add_message("s", "user", "text search still works")
            result = await store.search_messages("text search", session_id="s")
            assert result.vector is VectorStatus.UNAVAILABLE
            assert [h.item.content for h in result.hits] == ["text search still works"]
            decision = await store.add_decision(NewDecision("still decide things"))
            assert decision.status is DecisionStatus.OPEN
            assert not await db.fetchval(
                "SELECT count(*) FROM information_schema.columns WHERE column_name = 'embedding'"
                " AND table_name LIKE 'memory_%%'"
            )
    finally:
        drop_database(url)


async def test_embedder_returning_wrong_dimensions_is_a_typed_error(pg_url: str) -> None:
    class Broken:
        model = "broken"
        dimensions = 4

        async def embed(self, texts: object) -> list[list[float]]:
            return [[1.0, 2.0]]

    async with open_store(pg_url, embedder=Broken()) as (_, store):
        with pytest.raises(engine.EmbeddingError):
            await store.add_message(new_session_id(), "user", "x")


# --------------------------------------------------------------------------------------- expiry


async def test_expired_rows_are_never_returned_even_before_the_sweep(pg_url: str) -> None:
    sid = new_session_id()
    async with open_store(pg_url) as (db, store):
        await store.add_messages(
            sid,
            [
                NewMessage("user", "long-term memory of postgres"),
                NewMessage("user", "short-term postgres note", ttl=60),
            ],
        )
        await store.set_fact(sid, "branch", "name", "feat/x", ttl=60)
        await store.set_fact(sid, "goal", "main", "ship", pinned=True)
        decision = await store.add_decision(
            NewDecision("temporary postgres choice", session_id=sid, ttl=60)
        )
        user = new_session_id("user")
        await store.set_preference(user, "editor", "vim", confidence=0.9, source="test", ttl=60)
        await store.cache_put(f"{sid}-k", {"v": 1}, ttl=60)
        assert len(await store.get_messages(sid)) == 2

        for table, where, param in (
            ("memory_messages", "session_id = %s", sid),
            ("memory_context_facts", "session_id = %s", sid),
            ("memory_decisions", "session_id = %s", sid),
            ("memory_preferences", "user_id = %s", user),
            ("memory_retrieval_cache", "cache_key = %s", f"{sid}-k"),
        ):
            await backdate(db, table, 61, where, param)

        # every read path leaves the expired rows out, though they are still in the tables
        assert [m.content for m in await store.get_messages(sid)] == [
            "long-term memory of postgres"
        ]
        hits = await store.search_messages("postgres", session_id=sid)
        assert [h.item.content for h in hits.hits] == ["long-term memory of postgres"]
        assert await store.get_fact(sid, "branch", "name") is None
        assert [f.key for f in await store.list_facts(sid)] == ["main"]
        with pytest.raises(engine.MemoryNotFoundError):
            await store.get_decision(decision.id)
        assert not (await store.search_decisions("temporary postgres", session_id=sid)).hits
        assert await store.get_preference(user, "editor") is None
        assert await store.list_preferences(user) == []
        assert await store.cache_get(f"{sid}-k") is None
        assert await count_rows(db, "memory_messages", "session_id = %s", sid) == 2

        # then the sweeper deletes them
        report = await store.sweep_expired()
        assert report.deleted["memory_messages"] >= 1
        assert report.total >= 5
        assert await count_rows(db, "memory_messages", "session_id = %s", sid) == 1
        assert await count_rows(db, "memory_context_facts", "session_id = %s", sid) == 1
        assert [m.content for m in await store.get_messages(sid)] == [
            "long-term memory of postgres"
        ]


async def test_sweeper_service_runs_in_the_engine_tree(pg_url: str) -> None:
    sid = new_session_id()
    async with open_store(pg_url) as (db, store):
        await store.add_message(sid, "user", "gone soon", ttl=30)
        await backdate(db, "memory_messages", 31, "session_id = %s", sid)
        reports: list[engine.SweepReport] = []
        swept = trio.Event()

        def on_sweep(report: engine.SweepReport) -> None:
            reports.append(report)
            swept.set()

        async with engine.open_engine() as eng:
            eng.start_service(
                engine.run_memory_sweeper, store, 3600.0, on_sweep, name="memory-sweeper"
            )
            with trio.fail_after(30):
                await swept.wait()
        assert reports[0].deleted["memory_messages"] >= 1
        assert await count_rows(db, "memory_messages", "session_id = %s", sid) == 0
    with pytest.raises(engine.InvalidArgumentError):
        await engine.run_memory_sweeper(store, 0)


# ---------------------------------------------------------------------------------------- facts


async def test_facts_upsert_by_session_type_and_key(pg_url: str) -> None:
    sid = new_session_id()
    async with open_store(pg_url) as (_, store):
        first = await store.set_fact(sid, "branch", "name", "feat/a")
        second = await store.set_fact(sid, "branch", "name", {"name": "feat/b"}, pinned=True)
        assert second.value == {"name": "feat/b"}
        assert second.pinned
        assert second.created_at == first.created_at
        assert len(await store.list_facts(sid)) == 1
        await store.set_fact(sid, "file", "main", "a.py")
        assert [f.fact_type for f in await store.list_facts(sid, pinned_only=True)] == ["branch"]
        assert [f.key for f in await store.list_facts(sid, fact_type="file")] == ["main"]
        assert await store.delete_fact(sid, "file", "main")
        assert not await store.delete_fact(sid, "file", "main")


# ------------------------------------------------------------------------------------ decisions


async def test_supersession_chains(pg_url: str) -> None:
    sid = new_session_id()
    async with open_store(pg_url) as (_, store):
        a = await store.add_decision(
            NewDecision(
                "Cache in Redis", "fast", session_id=sid, entities=["cache"], files=["c.py"]
            )
        )
        b = await store.supersede_decision(
            a.id, NewDecision("Cache in PostgreSQL", "one less service")
        )
        c = await store.supersede_decision(b.id, NewDecision("Cache in PostgreSQL with TTL"))
        assert b.session_id == sid and c.session_id == sid  # inherited from the replaced one
        old = await store.get_decision(a.id)
        assert old.status is DecisionStatus.SUPERSEDED and old.superseded_by == b.id
        assert old.entities == ("cache",) and old.files == ("c.py",)
        for start in (a.id, b.id, c.id):
            chain = await store.decision_chain(start)
            assert [d.id for d in chain] == [a.id, b.id, c.id]
        assert chain[-1].status is DecisionStatus.OPEN
        # a superseded decision cannot be superseded or closed again
        with pytest.raises(engine.DecisionStateError):
            await store.supersede_decision(a.id, NewDecision("fork"))
        with pytest.raises(engine.DecisionStateError):
            await store.close_decision(b.id)
        closed = await store.close_decision(c.id)
        assert closed.status is DecisionStatus.CLOSED
        assert (await store.close_decision(c.id)).updated_at == closed.updated_at
        # search leaves superseded ones out unless asked
        found = await store.search_decisions("cache", session_id=sid)
        assert [h.item.id for h in found.hits] == [c.id]
        everything = await store.search_decisions("cache", session_id=sid, include_superseded=True)
        assert {h.item.id for h in everything.hits} == {a.id, b.id, c.id}
        with pytest.raises(engine.MemoryNotFoundError):
            await store.decision_chain(10**12)
        with pytest.raises(engine.MemoryNotFoundError):
            await store.supersede_decision(10**12, NewDecision("x"))


async def test_concurrent_supersession_has_one_winner(pg_url: str) -> None:
    async with open_store(pg_url) as (_, store):
        root = await store.add_decision(NewDecision("root", session_id=new_session_id()))
        outcomes: list[str] = []

        async def attempt(i: int) -> None:
            try:
                await store.supersede_decision(root.id, NewDecision(f"successor {i}"))
                outcomes.append("won")
            except engine.DecisionStateError:
                outcomes.append("lost")

        async with trio.open_nursery() as nursery:
            for i in range(5):
                nursery.start_soon(attempt, i)
        assert sorted(outcomes) == ["lost"] * 4 + ["won"]
        chain = await store.decision_chain(root.id)
        assert len(chain) == 2


async def test_expired_link_is_left_out_of_a_chain(pg_url: str) -> None:
    sid = new_session_id()
    async with open_store(pg_url) as (db, store):
        a = await store.add_decision(NewDecision("first", session_id=sid))
        b = await store.supersede_decision(a.id, NewDecision("second", ttl=30))
        c = await store.supersede_decision(b.id, NewDecision("third"))
        await backdate(db, "memory_decisions", 31, "id = %s", b.id)
        assert [d.id for d in await store.decision_chain(a.id)] == [a.id, c.id]


def test_new_decision_validation() -> None:
    with pytest.raises(engine.InvalidArgumentError):
        NewDecision(" ")
    with pytest.raises(engine.InvalidArgumentError):
        NewDecision("x", status="superseded")
    with pytest.raises(engine.InvalidArgumentError):
        NewDecision("x", status="maybe")
    with pytest.raises(engine.InvalidArgumentError):
        NewDecision("x", files="a.py")


# ---------------------------------------------------------------------------------- preferences


async def test_preferences_count_uses_and_keep_them_on_update(pg_url: str) -> None:
    user = new_session_id("user")
    async with open_store(pg_url) as (_, store):
        await store.set_preference(user, "tabs", "spaces", confidence=0.6, source="inferred")
        await store.set_preference(user, "lang", "python", confidence=0.95, source="explicit")
        await store.get_preference(user, "tabs")
        used = await store.get_preference(user, "tabs")
        assert used is not None and used.usage_count == 2 and used.last_used_at is not None
        peek = await store.get_preference(user, "tabs", record_use=False)
        assert peek is not None and peek.usage_count == 2
        updated = await store.set_preference(
            user, "tabs", "tabs", confidence=0.8, source="explicit"
        )
        assert updated.usage_count == 2 and updated.value == "tabs"
        assert [p.key for p in await store.list_preferences(user)] == ["lang", "tabs"]
        assert [p.key for p in await store.list_preferences(user, min_confidence=0.9)] == ["lang"]
        with pytest.raises(engine.InvalidArgumentError):
            await store.set_preference(user, "x", 1, confidence=1.5, source="s")
        assert await store.get_preference(user, "missing") is None


async def test_retrieval_cache(pg_url: str) -> None:
    key = new_session_id("rc")
    async with open_store(pg_url) as (_, store):
        assert await store.cache_get(key) is None
        await store.cache_put(key, {"bundle": [1, 2]}, ttl=60)
        assert await store.cache_get(key) == {"bundle": [1, 2]}
        await store.cache_put(key, ["replaced"], ttl=60)
        assert await store.cache_get(key) == ["replaced"]
        with pytest.raises(engine.InvalidArgumentError):
            await store.cache_put(key, 1, ttl=-1)


async def test_sessions_link_to_engine_session_ids(pg_url: str) -> None:
    async with engine.open_engine() as eng, eng.open_session("memory-link") as session:
        async with open_store(pg_url) as (_, store):
            created = await store.ensure_session(session.id, title="linked", metadata={"a": 1})
            again = await store.ensure_session(session.id)
            assert created.session_id == again.session_id == session.id
            assert again.title == "linked" and again.metadata == {"a": 1}
            await store.add_message(session.id, "user", "hello")
            assert (await store.get_messages(session.id))[0].session_id == session.id


async def test_search_errors_come_out_typed_not_grouped(pg_url: str) -> None:
    async with open_store(pg_url) as (_, store):
        pass
    # the rankings run concurrently; a failure still surfaces as the adapter's own error
    with pytest.raises(adapters.DatabaseClosedError):
        await store.search_messages("anything")
    with pytest.raises(adapters.DatabaseClosedError):
        await store.search_decisions("anything")
