"""The engine's memory sources and the rehydrator on each memory store: the same evidence, cited
the same way, whichever store holds it."""

from __future__ import annotations

from contracts.backends import MemoriesBackend

import engine
from engine import NewDecision, NewMessage, SourceQuery


async def test_sources_turn_store_rows_into_evidence(memories: MemoriesBackend) -> None:
    async with memories.open_store() as store:
        (message,) = await store.add_messages(
            "s", [NewMessage("user", "We cache rehydrated bundles for sixty seconds")]
        )
        decision = await store.add_decision(
            NewDecision("Cache bundles in PostgreSQL", "one less service", session_id="s")
        )
        await store.set_fact("s", "goal", "main", "ship the cache", pinned=True)
        await store.set_fact("s", "file", "cache", "engine/_memory/_cache.py")
        query = SourceQuery(text="cache bundles", session_id="s", role=None, limit=5)

        found = await engine.MessagesSource(store).search(query)
        assert [e.citation for e in found] == [f"messages:{message.id}"]
        assert found[0].ranks and found[0].metadata == {"session_id": "s", "seq": 1}
        decisions = await engine.DecisionsSource(store).search(query)
        assert [e.citation for e in decisions] == [f"decisions:{decision.id}"]
        assert "PostgreSQL" in decisions[0].text
        facts = await engine.FactsSource(store).search(query)
        assert [e.pinned for e in facts][:1] == [True]
        assert any("ship the cache" in e.text for e in facts)


async def test_the_rehydrator_packs_a_bundle_from_each_store(memories: MemoriesBackend) -> None:
    async with memories.open_store() as store:
        await store.add_messages(
            "s",
            [
                NewMessage("user", "How long do we cache rehydrated bundles?"),
                NewMessage("assistant", "Bundles are cached for sixty seconds"),
                NewMessage("user", "Lunch at noon"),
            ],
        )
        decision = await store.add_decision(
            NewDecision("Cache bundles for sixty seconds", session_id="s")
        )
        await store.set_fact("s", "goal", "main", "ship the bundle cache", pinned=True)
        bundle = await engine.rehydrate(
            "cache bundles",
            sources=[
                engine.FactsSource(store),
                engine.MessagesSource(store),
                engine.DecisionsSource(store),
            ],
            session="s",
            timeout=10.0,
        )
        assert {r.name: r.status for r in bundle.sources} == {
            "facts": engine.SourceStatus.OK,
            "messages": engine.SourceStatus.OK,
            "decisions": engine.SourceStatus.OK,
        }
        citations = [item.citation for item in bundle.items]
        assert bundle.items[0].pinned and citations[0].startswith("facts:")
        assert f"decisions:{decision.id}" in citations
        assert not any("Lunch" in item.evidence.text for item in bundle.items)
        assert bundle.tokens <= bundle.token_budget


async def test_sources_and_the_rehydrator_narrow_to_a_repository(memories: MemoriesBackend) -> None:
    async with memories.open_store() as store:
        said = {
            "a": "the cache key holds the model name",
            "b": "remember: model settings are part of every cache key",
            "c": "a cache key without the model would mix answers up",
        }
        for sid, repo in (("a", "/work/shop"), ("b", "/work/shop"), ("c", "/work/other")):
            await store.ensure_session(sid, repo=repo)
            await store.add_messages(sid, [NewMessage("user", said[sid])])
            await store.set_fact(sid, "note", "cache", f"cache keys include the model ({sid})")
        query = SourceQuery(
            "cache key model", session_id=None, role=None, limit=10, repo="/work/shop"
        )
        messages = await engine.MessagesSource(store).search(query)
        assert sorted(e.metadata["session_id"] for e in messages) == ["a", "b"]
        facts = await engine.FactsSource(store).search(query)
        assert sorted(e.citation for e in facts) == ["facts:a/note/cache", "facts:b/note/cache"]
        bundle = await engine.rehydrate(
            "cache key model",
            sources=[engine.MessagesSource(store), engine.FactsSource(store)],
            repo="/work/shop",
            timeout=5,
        )
        texts = [item.evidence.text for item in bundle.items]
        assert f"user: {said['a']}" in texts and f"user: {said['b']}" in texts
        assert not any(said["c"] in t or "(c)" in t for t in texts)
