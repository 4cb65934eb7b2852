"""The generation store contract: exact hits and misses, similar prompts, expiry, invalidation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from contracts.backends import GenerationsBackend

import engine

MODEL = "model-a"


def _generation(
    prompt: str,
    response: str = "answer",
    *,
    model: str = MODEL,
    settings: Mapping[str, Any] | None = None,
    ttl: float | None = None,
) -> engine.NewGeneration:
    chosen = dict(settings or {"temperature": 0.0})
    return engine.NewGeneration(
        key=engine.generation_key(prompt, model, chosen),
        prompt=prompt,
        model=model,
        settings=chosen,
        settings_hash=engine.settings_hash(model, chosen),
        response=response,
        ttl=ttl,
    )


PROMPT = "Explain how the rehydrator packs a bundle within the token budget"
NEAR = "Explain briefly how the rehydrator packs a bundle within the token budget"


async def test_exact_hit_miss_and_replace(generations: GenerationsBackend) -> None:
    async with generations.open_store() as store:
        g = _generation(PROMPT, ttl=60)
        assert await store.get_exact(g.key) is None
        await store.put(g)
        hit = await store.get_exact(g.key)
        assert hit is not None
        assert (hit.key, hit.prompt, hit.model, hit.response, hit.similarity) == (
            g.key,
            PROMPT,
            MODEL,
            "answer",
            1.0,
        )
        assert hit.settings_hash == g.settings_hash
        assert hit.created_at.tzinfo is not None and hit.expires_at is not None
        assert 59 <= (hit.expires_at - hit.created_at).total_seconds() <= 61
        await store.put(_generation(PROMPT, "better answer"))
        replaced = await store.get_exact(g.key)
        assert replaced is not None and replaced.response == "better answer"
        assert replaced.expires_at is None
        await store.record_hit(g.key)
        await store.record_hit("no-such-key")  # no error


async def test_similar_prompts_of_the_same_model_and_settings(
    generations: GenerationsBackend,
) -> None:
    async with generations.open_store() as store:
        base = _generation(PROMPT)
        await store.put(base)
        await store.put(_generation("Write a haiku about databases", "haiku"))
        await store.put(_generation(PROMPT, "other model", model="model-b"))
        await store.put(_generation(PROMPT, "hot", settings={"temperature": 0.9}))
        found = await store.find_similar(
            NEAR, model=MODEL, settings_hash=base.settings_hash, threshold=0.5, limit=5
        )
        assert [c.key for c in found] == [base.key]
        assert 0.8 <= found[0].similarity < 1.0
        exact = await store.find_similar(
            PROMPT, model=MODEL, settings_hash=base.settings_hash, threshold=0.5, limit=5
        )
        assert exact[0].similarity == pytest.approx(1.0)
        assert (
            await store.find_similar(
                NEAR, model=MODEL, settings_hash=base.settings_hash, threshold=0.99, limit=5
            )
            == []
        )
        nearer = _generation(PROMPT.replace("Explain", "Explain now"), "nearer")
        await store.put(nearer)
        both = await store.find_similar(
            NEAR, model=MODEL, settings_hash=base.settings_hash, threshold=0.5, limit=5
        )
        assert {c.key for c in both} == {base.key, nearer.key}
        assert both[0].similarity >= both[1].similarity
        one = await store.find_similar(
            NEAR, model=MODEL, settings_hash=base.settings_hash, threshold=0.5, limit=1
        )
        assert [c.key for c in one] == [both[0].key]


async def test_expired_entries_are_never_returned(generations: GenerationsBackend) -> None:
    async with generations.open_store() as store:
        short = _generation(PROMPT, ttl=60)
        forever = _generation("Summarise the worklog of a session", "kept")
        await store.put(short)
        await store.put(forever)
        await generations.age(61)
        assert await store.get_exact(short.key) is None
        found = await store.find_similar(
            NEAR, model=MODEL, settings_hash=short.settings_hash, threshold=0.3, limit=5
        )
        assert found == []
        kept = await store.get_exact(forever.key)
        assert kept is not None and kept.response == "kept"


async def test_invalidation_by_key_model_and_age(generations: GenerationsBackend) -> None:
    async with generations.open_store() as store:
        a, b = _generation("prompt a"), _generation("prompt b")
        c = _generation("prompt c", model="model-b")
        for g in (a, b, c):
            await store.put(g)
        assert await store.invalidate(key=a.key) == 1
        assert await store.get_exact(a.key) is None and await store.get_exact(b.key) is not None
        assert await store.invalidate(older_than=3600) == 0
        await generations.age(7200)
        d = _generation("prompt d")
        await store.put(d)
        assert await store.invalidate(model=MODEL, older_than=3600) == 1  # b, not d
        assert await store.invalidate(model="model-b") == 1
        assert await store.get_exact(d.key) is not None
        with pytest.raises(engine.InvalidArgumentError):
            await store.invalidate()
        with pytest.raises(engine.InvalidArgumentError):
            await store.invalidate(older_than=-1)
        with pytest.raises(engine.InvalidArgumentError):
            await store.find_similar(
                "p", model=MODEL, settings_hash=d.settings_hash, threshold=0.5, limit=0
            )


async def test_the_generation_cache_on_the_store(generations: GenerationsBackend) -> None:
    async with generations.open_store() as store:
        cache = engine.GenerationCache(store, similarity_threshold=0.8)
        calls: list[str] = []

        def gen(text: str):  # type: ignore[no-untyped-def]
            async def run() -> str:
                calls.append(text)
                return text

            return run

        first = await cache.get_or_generate(PROMPT, MODEL, {}, gen("answer"))
        exact = await cache.get_or_generate(PROMPT, MODEL, {}, gen("no"))
        similar = await cache.get_or_generate(NEAR, MODEL, {}, gen("no"))
        other = await cache.get_or_generate(NEAR, "model-b", {}, gen("other"))
        assert [r.outcome for r in (first, exact, similar, other)] == [
            engine.CacheOutcome.GENERATED,
            engine.CacheOutcome.EXACT,
            engine.CacheOutcome.SIMILAR,
            engine.CacheOutcome.GENERATED,
        ]
        assert similar.matched_key == first.key and calls == ["answer", "other"]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (PROMPT, NEAR),
        ("Summarize the log", "Summarize the logs"),
        ("words, punctuation! and-dashes", "words punctuation and dashes"),
        ("snake_case and CamelCase", "snake case and camelcase"),
        ("a", "ab"),
        ("", "anything"),
    ],
)
async def test_in_memory_similarity_is_pg_trgm_similarity(pg_url: str, a: str, b: str) -> None:
    """ASCII text only: which non-ASCII characters count as letters depends on the database's locale."""
    import adapters
    from engine.testing._trigram import similarity

    async with adapters.open_database(pg_url, pool_size=1) as db:
        expected = await db.fetchval("SELECT similarity(%s, %s)", (a, b))
    assert similarity(a, b) == pytest.approx(float(expected), abs=1e-6)
