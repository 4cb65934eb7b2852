"""The conversation-memory contract: messages, search, facts, decisions with supersession,
preferences, the retrieval cache and expiry.

Search is held to what the protocol promises (which rows are found, the best one first, ranks per
ranking), not to scores: full-text ranking numbers differ between PostgreSQL and the fake.
"""

from __future__ import annotations

import pytest
import trio
from contracts.backends import MemoriesBackend

import adapters
import engine
import engine.testing
from engine import DecisionStatus, NewDecision, NewMessage, VectorStatus


async def test_messages_are_numbered_in_order_and_hashed(memories: MemoriesBackend) -> None:
    async with memories.open_store() as store:
        first = await store.add_messages(
            "s",
            [NewMessage("user", "hello there"), NewMessage("assistant", "hi", metadata={"k": 1})],
        )
        (second,) = await store.add_messages("s", [NewMessage("tool", "ran tests: 3 passed")])
        assert [m.seq for m in first] == [1, 2] and second.seq == 3
        assert first[0].role is engine.MessageRole.USER and first[1].metadata == {"k": 1}
        assert first[0].content_hash == engine.content_hash("hello there")
        assert first[0].expires_at is None and first[0].created_at.tzinfo is not None
        assert len({m.id for m in (*first, second)}) == 3
        got = await store.get_messages("s")
        assert [m.content for m in got] == ["hello there", "hi", "ran tests: 3 passed"]
        assert got == [*first, second]
        assert [m.seq for m in await store.get_messages("s", limit=2)] == [2, 3]
        assert [m.seq for m in await store.get_messages("s", after_seq=2)] == [3]
        assert await store.get_messages("other") == []
        assert await store.add_messages("s", []) == []


async def test_concurrent_appends_get_distinct_sequence_numbers(memories: MemoriesBackend) -> None:
    async with memories.open_store() as store:
        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(store.add_messages, "s", [NewMessage("user", f"message {i}")])
        assert sorted(m.seq for m in await store.get_messages("s")) == list(range(1, 11))


async def test_a_message_whose_source_id_the_session_has_is_stored_once(
    memories: MemoriesBackend,
) -> None:
    async with memories.open_store() as store:
        batch = [
            NewMessage("user", "first", source_id="u-1"),
            NewMessage("assistant", "second", source_id="a-1"),
            NewMessage("assistant", "second again", source_id="a-1"),  # same call: kept once
            NewMessage("user", "typed, no source"),
        ]
        stored = await store.add_messages("s", batch)
        assert [(m.seq, m.source_id) for m in stored] == [(1, "u-1"), (2, "a-1"), (3, None)]
        again = await store.add_messages(
            "s", [*batch, NewMessage("user", "third", source_id="u-2")]
        )
        assert [(m.seq, m.content, m.source_id) for m in again] == [
            (4, "typed, no source", None),
            (5, "third", "u-2"),
        ]
        assert await store.add_messages("s", [NewMessage("user", "x", source_id="u-1")]) == []
        # another session keeps its own
        (other,) = await store.add_messages("t", [NewMessage("user", "first", source_id="u-1")])
        assert other.seq == 1
        got = await store.get_messages("s")
        assert [m.content for m in got] == [
            "first", "second", "typed, no source", "typed, no source", "third"
        ]  # fmt: skip
        assert [m.seq for m in got] == [1, 2, 3, 4, 5]
        async with trio.open_nursery() as nursery:  # concurrent imports of one record
            for _ in range(5):
                nursery.start_soon(
                    store.add_messages, "c", [NewMessage("user", "once", source_id="k")]
                )
        assert [m.content for m in await store.get_messages("c")] == ["once"]
        with pytest.raises(engine.InvalidArgumentError):
            NewMessage("user", "x", source_id="")
        with pytest.raises(engine.FieldLimitError):
            NewMessage("user", "x", source_id="u" * (engine.SOURCE_ID_MAX + 1))


async def test_bad_input_is_a_typed_error(memories: MemoriesBackend) -> None:
    async with memories.open_store() as store:
        with pytest.raises(engine.InvalidArgumentError):
            await store.add_messages("", [NewMessage("user", "x")])
        with pytest.raises(engine.InvalidArgumentError, match="JSON"):
            await store.add_messages("s", [NewMessage("user", "x", metadata={"bad": object()})])
        with pytest.raises(engine.InvalidArgumentError):
            await store.search_messages("x", limit=0)
        with pytest.raises(engine.InvalidArgumentError):
            await store.search_messages("")
        with pytest.raises(engine.InvalidArgumentError, match="JSON"):
            await store.set_fact("s", "t", "k", {1, 2})
        with pytest.raises(engine.InvalidArgumentError):
            await store.set_preference("u", "x", 1, confidence=1.5, source="s")
        with pytest.raises(engine.InvalidArgumentError):
            await store.cache_put("k", 1, ttl=-1)
        with pytest.raises(engine.InvalidArgumentError):
            await store.cache_put("k", 1, ttl=True)
        with pytest.raises(engine.InvalidArgumentError):
            await store.get_messages("s", limit=0)
        with pytest.raises(engine.InvalidArgumentError):
            await store.get_fact("", "t", "k")
        with pytest.raises(engine.InvalidArgumentError):
            await store.list_preferences("")
        assert await store.get_messages("s") == []  # nothing half-written


async def test_search_finds_by_words_and_by_trigrams(memories: MemoriesBackend) -> None:
    async with memories.open_store() as store:
        await store.add_messages(
            "s",
            [
                NewMessage("user", "The rehydrator should query sources in parallel"),
                NewMessage("assistant", "Parallel querying of sources keeps latency low"),
                NewMessage("user", "Unrelated: lunch at noon"),
                NewMessage("user", "rehydratr typo but close"),
            ],
        )
        await store.add_messages("elsewhere", [NewMessage("user", "rehydrator in parallel")])
        result = await store.search_messages("rehydrator parallel sources", session_id="s")
        assert result.vector is VectorStatus.NO_EMBEDDER
        contents = [h.item.content for h in result.hits]
        assert contents[0] == "The rehydrator should query sources in parallel"
        assert "Parallel querying of sources keeps latency low" in contents
        assert "Unrelated: lunch at noon" not in contents
        assert all(h.item.session_id == "s" for h in result.hits)
        for hit in result.hits:
            assert hit.ranks and set(hit.ranks) <= {"fts", "trgm"}
            assert set(hit.scores) == set(hit.ranks)
            assert all(rank >= 1 for rank in hit.ranks.values())
        top = result.hits[0]
        assert top.ranks["fts"] == 1
        # trigram finds the misspelt one that full text cannot
        typo = await store.search_messages("rehydratr", session_id="s")
        assert any(h.item.content.startswith("rehydratr") for h in typo.hits)
        everywhere = await store.search_messages("rehydrator parallel")
        assert {h.item.session_id for h in everywhere.hits} == {"s", "elsewhere"}
        assert len((await store.search_messages("parallel", limit=1)).hits) == 1
        assert (await store.search_messages("zebra", session_id="s")).hits == ()


async def test_vector_search_with_an_embedder(memories: MemoriesBackend) -> None:
    async with memories.open_store(embedder=adapters.HashingEmbedder(64)) as store:
        assert store.vector_status is VectorStatus.USED
        await store.add_messages(
            "s",
            [
                NewMessage("user", "deployment pipeline for kubernetes clusters"),
                NewMessage("user", "a recipe for apple pie"),
            ],
        )
        combined = await store.search_messages("kubernetes", session_id="s")
        assert combined.vector is VectorStatus.USED
        assert combined.hits[0].item.content.startswith("deployment pipeline")
        assert "vec" in combined.hits[0].ranks
        decision = await store.add_decision(NewDecision("Deploy with kubernetes", session_id="s"))
        found = await store.search_decisions("kubernetes deployment", session_id="s")
        assert found.hits[0].item.id == decision.id and "vec" in found.hits[0].ranks


async def test_facts_upsert_by_session_type_and_key(memories: MemoriesBackend) -> None:
    async with memories.open_store() as store:
        first = await store.set_fact("s", "branch", "name", "feat/a")
        second = await store.set_fact("s", "branch", "name", {"name": "feat/b"}, pinned=True)
        assert second.value == {"name": "feat/b"} and second.pinned
        assert second.created_at == first.created_at and second.updated_at >= first.updated_at
        assert await store.get_fact("s", "branch", "name") == second
        assert len(await store.list_facts("s")) == 1
        await store.set_fact("s", "file", "main", "a.py")
        await store.set_fact("s", "file", "aux", "b.py")
        assert [(f.fact_type, f.key) for f in await store.list_facts("s")] == [
            ("branch", "name"),
            ("file", "aux"),
            ("file", "main"),
        ]
        assert [f.fact_type for f in await store.list_facts("s", pinned_only=True)] == ["branch"]
        assert [f.key for f in await store.list_facts("s", fact_type="file")] == ["aux", "main"]
        assert await store.delete_fact("s", "file", "main")
        assert not await store.delete_fact("s", "file", "main")
        assert await store.get_fact("s", "file", "main") is None


async def test_supersession_chains(memories: MemoriesBackend) -> None:
    async with memories.open_store() as store:
        a = await store.add_decision(
            NewDecision(
                "Cache in Redis", "fast", session_id="s", entities=["cache"], files=["c.py"]
            )
        )
        assert (a.status, a.superseded_by, a.entities, a.files) == (
            DecisionStatus.OPEN,
            None,
            ("cache",),
            ("c.py",),
        )
        b = await store.supersede_decision(a.id, NewDecision("Cache in PostgreSQL", "one less"))
        c = await store.supersede_decision(b.id, NewDecision("Cache in PostgreSQL with TTL"))
        assert b.session_id == "s" and c.session_id == "s"  # inherited from the replaced one
        old = await store.get_decision(a.id)
        assert old.status is DecisionStatus.SUPERSEDED and old.superseded_by == b.id
        for start in (a.id, b.id, c.id):
            chain = await store.decision_chain(start)
            assert [d.id for d in chain] == [a.id, b.id, c.id]
        assert chain[-1].status is DecisionStatus.OPEN
        with pytest.raises(engine.DecisionStateError):
            await store.supersede_decision(a.id, NewDecision("fork"))
        with pytest.raises(engine.DecisionStateError):
            await store.close_decision(b.id)
        closed = await store.close_decision(c.id)
        assert closed.status is DecisionStatus.CLOSED
        assert (await store.close_decision(c.id)).updated_at == closed.updated_at
        found = await store.search_decisions("cache", session_id="s")
        assert [h.item.id for h in found.hits] == [c.id]
        everything = await store.search_decisions("cache", session_id="s", include_superseded=True)
        assert {h.item.id for h in everything.hits} == {a.id, b.id, c.id}
        with pytest.raises(engine.MemoryNotFoundError):
            await store.get_decision(10**12)
        with pytest.raises(engine.MemoryNotFoundError):
            await store.decision_chain(10**12)
        with pytest.raises(engine.MemoryNotFoundError):
            await store.supersede_decision(10**12, NewDecision("x"))


async def test_concurrent_supersession_has_one_winner(memories: MemoriesBackend) -> None:
    async with memories.open_store() as store:
        root = await store.add_decision(NewDecision("root", session_id="s"))
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
        assert len(await store.decision_chain(root.id)) == 2


async def test_preferences_count_uses_and_keep_them_on_update(memories: MemoriesBackend) -> None:
    async with memories.open_store() as store:
        await store.set_preference("u", "tabs", "spaces", confidence=0.6, source="inferred")
        await store.set_preference("u", "lang", "python", confidence=0.95, source="explicit")
        await store.get_preference("u", "tabs")
        used = await store.get_preference("u", "tabs")
        assert used is not None and used.usage_count == 2 and used.last_used_at is not None
        peek = await store.get_preference("u", "tabs", record_use=False)
        assert peek is not None and peek.usage_count == 2
        updated = await store.set_preference("u", "tabs", "tabs", confidence=0.8, source="explicit")
        assert updated.usage_count == 2 and updated.value == "tabs"
        assert (updated.confidence, updated.source) == (0.8, "explicit")
        assert [p.key for p in await store.list_preferences("u")] == ["lang", "tabs"]
        assert [p.key for p in await store.list_preferences("u", min_confidence=0.9)] == ["lang"]
        assert await store.get_preference("u", "missing") is None
        assert await store.list_preferences("nobody") == []


async def test_retrieval_cache_and_sessions(memories: MemoriesBackend) -> None:
    async with memories.open_store() as store:
        assert await store.cache_get("k") is None
        await store.cache_put("k", {"bundle": [1, 2]}, ttl=60)
        assert await store.cache_get("k") == {"bundle": [1, 2]}
        await store.cache_put("k", ["replaced"], ttl=60)
        assert await store.cache_get("k") == ["replaced"]

        created = await store.ensure_session("linked", title="linked", metadata={"a": 1})
        again = await store.ensure_session("linked")
        assert created.session_id == again.session_id == "linked"
        assert (again.title, again.metadata) == ("linked", {"a": 1})
        renamed = await store.ensure_session("linked", title="renamed")
        assert renamed.title == "renamed" and renamed.metadata == {"a": 1}
        assert renamed.created_at == created.created_at


async def test_expired_rows_are_never_returned_even_before_the_sweep(
    memories: MemoriesBackend,
) -> None:
    async with memories.open_store() as store:
        await store.add_messages(
            "s",
            [
                NewMessage("user", "long-term memory of postgres"),
                NewMessage("user", "short-term postgres note", ttl=60),
            ],
        )
        await store.set_fact("s", "branch", "name", "feat/x", ttl=60)
        await store.set_fact("s", "goal", "main", "ship", pinned=True)
        short = await store.add_decision(
            NewDecision("temporary postgres choice", session_id="s", ttl=60)
        )
        a = await store.add_decision(NewDecision("first", session_id="s"))
        b = await store.supersede_decision(a.id, NewDecision("second", ttl=60))
        c = await store.supersede_decision(b.id, NewDecision("third"))
        await store.set_preference("u", "editor", "vim", confidence=0.9, source="test", ttl=60)
        await store.cache_put("k", {"v": 1}, ttl=60)
        assert len(await store.get_messages("s")) == 2
        assert short.expires_at is not None

        await memories.age(61)

        assert [m.content for m in await store.get_messages("s")] == [
            "long-term memory of postgres"
        ]
        hits = await store.search_messages("postgres", session_id="s")
        assert [h.item.content for h in hits.hits] == ["long-term memory of postgres"]
        assert await store.get_fact("s", "branch", "name") is None
        assert [f.key for f in await store.list_facts("s")] == ["main"]
        with pytest.raises(engine.MemoryNotFoundError):
            await store.get_decision(short.id)
        assert not (await store.search_decisions("temporary postgres", session_id="s")).hits
        assert [d.id for d in await store.decision_chain(a.id)] == [a.id, c.id]
        assert await store.get_preference("u", "editor") is None
        assert await store.list_preferences("u") == []
        assert await store.cache_get("k") is None
        assert not await store.delete_fact("s", "branch", "name")  # it was no longer live

        report = await store.sweep_expired()
        assert report.deleted["memory_messages"] == 1
        assert report.deleted["memory_decisions"] == 2
        assert report.deleted["memory_preferences"] == 1
        assert report.deleted["memory_retrieval_cache"] == 1
        assert report.total >= 5
        assert (await store.sweep_expired()).total == 0
        assert [m.content for m in await store.get_messages("s")] == [
            "long-term memory of postgres"
        ]


async def test_vectors_a_test_chooses_decide_the_vector_ranking(memories: MemoriesBackend) -> None:
    embedder = engine.testing.FakeEmbedder(
        {
            "alpha note": [1.0, 0.0, 0.0, 0.0],
            "beta note": [0.0, 1.0, 0.0, 0.0],
            "close to alpha": [0.9, 0.1, 0.0, 0.0],
        }
    )
    async with memories.open_store(embedder=embedder) as store:
        assert store.vector_status is VectorStatus.USED
        alpha, beta = await store.add_messages(
            "s", [NewMessage("user", "alpha note"), NewMessage("user", "beta note")]
        )
        result = await store.search_messages("close to alpha", session_id="s")
        assert result.vector is VectorStatus.USED
        by_id = {h.item.id: h for h in result.hits}
        assert by_id[alpha.id].ranks["vec"] == 1 and by_id[beta.id].ranks["vec"] == 2
        assert by_id[alpha.id].scores["vec"] > by_id[beta.id].scores["vec"]
        assert ("alpha note", "beta note") in embedder.calls


async def test_an_embedder_returning_wrong_vectors_is_a_typed_error(
    memories: MemoriesBackend,
) -> None:
    # a decision is embedded as its title and body: "x\n"
    wrong = engine.testing.FakeEmbedder({"x": [1.0, 2.0], "x\n": [1.0]}, dimensions=4)
    async with memories.open_store(embedder=wrong) as store:
        with pytest.raises(engine.EmbeddingError):
            await store.add_messages("s", [NewMessage("user", "x")])
        with pytest.raises(engine.EmbeddingError):
            await store.add_decision(NewDecision("x"))
        assert await store.get_messages("s") == []


async def test_memory_sessions_carry_a_repository_that_scopes_searches(
    memories: MemoriesBackend,
) -> None:
    async with memories.open_store() as store:
        first = await store.ensure_session("a", repo="/work/shop")
        assert first.repo == "/work/shop"
        kept = await store.ensure_session("a", title="titled")
        assert kept.repo == "/work/shop" and kept.title == "titled"  # left out: kept
        assert (await store.ensure_session("b", repo="/work/shop")).repo == "/work/shop"
        assert (await store.ensure_session("other", repo="/work/other")).repo == "/work/other"
        assert (await store.ensure_session("loose")).repo is None
        for sid in ("a", "b", "other", "loose"):
            await store.add_messages(
                sid, [NewMessage("user", f"deploy the shop with helm ({sid})")]
            )
            await store.add_decision(NewDecision(f"Deploy with helm ({sid})", session_id=sid))
            await store.set_fact(sid, "note", "deploy", f"helm charts live in deploy/ ({sid})")

        found = await store.search_messages("deploy helm", repo="/work/shop")
        assert sorted(h.item.session_id for h in found.hits) == ["a", "b"]
        decided = await store.search_decisions("deploy helm", repo="/work/shop")
        assert sorted(h.item.session_id for h in decided.hits) == ["a", "b"]
        own = await store.search_messages("deploy helm", session_id="b")
        assert [h.item.session_id for h in own.hits] == ["b"]
        both = await store.search_messages("deploy helm", session_id="loose", repo="/work/shop")
        assert sorted(h.item.session_id for h in both.hits) == ["a", "b", "loose"]  # either
        either = await store.search_decisions("deploy", session_id="b", repo="/work/other")
        assert sorted(h.item.session_id for h in either.hits) == ["b", "other"]
        assert (await store.search_decisions("deploy", repo="/nowhere")).hits == ()
        everywhere = await store.search_messages("deploy helm")
        assert len(everywhere.hits) == 4
        facts = await store.list_facts(None, repo="/work/shop")
        assert [f.session_id for f in facts] == ["a", "b"]
        assert [f.session_id for f in await store.list_facts("a", repo="/work/other")] == [
            "a",
            "other",
        ]
        assert [f.session_id for f in await store.list_facts("nobody", repo="/nowhere")] == []
        assert [f.session_id for f in await store.list_facts("loose")] == ["loose"]

        for bad in ("", "/" + "r" * engine.PATH_MAX):
            with pytest.raises(engine.InvalidArgumentError):
                await store.ensure_session("c", repo=bad)
            with pytest.raises(engine.InvalidArgumentError):
                await store.search_messages("deploy", repo=bad)
            with pytest.raises(engine.InvalidArgumentError):
                await store.search_decisions("deploy", repo=bad)
        with pytest.raises(engine.InvalidArgumentError, match="session or of a repo"):
            await store.list_facts(None)
