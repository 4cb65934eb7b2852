"""The generation cache: keys, the similarity guard, and the PostgreSQL-backed cache."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import trio
from memory_support import backdate

import adapters
import engine
from engine import CacheOutcome, generation_key, similarity_guard

# ------------------------------------------------------------------------------- pure pieces


def test_key_covers_prompt_model_and_settings_canonically() -> None:
    base = generation_key("p", "m", {"temperature": 0.2, "max_tokens": 10})
    assert base == generation_key("p", "m", {"max_tokens": 10, "temperature": 0.2})
    assert base != generation_key("p", "m2", {"temperature": 0.2, "max_tokens": 10})
    assert base != generation_key("p", "m", {"temperature": 0.3, "max_tokens": 10})
    assert base != generation_key("p ", "m", {"temperature": 0.2, "max_tokens": 10})
    with pytest.raises(engine.InvalidArgumentError):
        generation_key("p", "m", {"x": object()})
    with pytest.raises(engine.InvalidArgumentError):
        generation_key("p", "m", {"x": float("nan")})


@pytest.mark.parametrize(
    ("a", "b", "reason"),
    [
        ("Delete the temp table", "Do not delete the temp table", "negation"),
        ("Should we cache it?", "Shouldn't we cache it?", "negation"),
        ("List files with tests", "List files without tests", "negation"),
        ("never retry on error", "always retry on error", "negation"),
        ("Retry 3 times", "Retry 5 times", "number"),
        ("Retry three times", "Retry five times", "number"),
        ("timeout of 1.5 s", "timeout of 15 s", "number"),
        ("limit 1,000 rows", "limit 10,000 rows", "number"),
        ("Use Python 3.11", "Use Python 3.12", "number"),
        ("Summarize the log", "Summarize the logs", None),
        ("don't delete it", "do not delete it", None),
        ("limit 1,000 rows", "limit 1000 rows", None),
        ("Retry 3 times", "retry three times", None),
    ],
)
def test_similarity_guard(a: str, b: str, reason: str | None) -> None:
    assert similarity_guard(a, b) == reason
    assert similarity_guard(b, a) == reason


def test_cache_argument_checks() -> None:
    class Nothing:
        pass

    with pytest.raises(engine.InvalidArgumentError):
        engine.GenerationCache(Nothing(), similarity_threshold=1.5)  # type: ignore[arg-type]
    with pytest.raises(engine.InvalidArgumentError):
        engine.GenerationCache(Nothing(), ttl=0)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- over PostgreSQL


def _model() -> str:
    return f"model-{uuid.uuid4().hex[:8]}"  # a model of its own keeps tests apart


async def test_exact_then_similar_within_model_and_settings(pg_url: str) -> None:
    model, other_model = _model(), _model()
    settings = {"temperature": 0.0}
    calls: list[str] = []

    def generator(text: str):  # type: ignore[no-untyped-def]
        async def run() -> str:
            calls.append(text)
            return text

        return run

    prompt = "Explain how the rehydrator packs a bundle within the token budget"
    async with adapters.open_database(pg_url) as db:
        cache = adapters.create_generation_cache(db, similarity_threshold=0.8)
        first = await cache.get_or_generate(prompt, model, settings, generator("answer"))
        assert first.outcome is CacheOutcome.GENERATED and first.text == "answer"
        exact = await cache.get_or_generate(prompt, model, settings, generator("no"))
        assert exact.outcome is CacheOutcome.EXACT and exact.text == "answer"
        # a near-identical prompt, same model and settings: a similar hit
        near = prompt.replace("Explain", "Explain briefly")
        similar = await cache.get_or_generate(near, model, settings, generator("no"))
        assert similar.outcome is CacheOutcome.SIMILAR
        assert similar.matched_key == first.key and similar.similarity >= 0.8
        # the same near prompt for another model, or other settings: a miss
        other = await cache.get_or_generate(near, other_model, settings, generator("other"))
        assert other.outcome is CacheOutcome.GENERATED and other.text == "other"
        hotter = await cache.get_or_generate(near, model, {"temperature": 0.9}, generator("hot"))
        assert hotter.outcome is CacheOutcome.GENERATED
        # below the threshold: a miss
        far = await cache.get_or_generate(
            "Write a haiku about databases", model, settings, generator("haiku")
        )
        assert far.outcome is CacheOutcome.GENERATED
        assert calls == ["answer", "other", "hot", "haiku"]
        stats = cache.statistics()
        assert (stats.exact_hits, stats.similar_hits, stats.misses) == (1, 1, 4)
        assert stats.generated == 4 and stats.hit_ratio == pytest.approx(2 / 6)


@pytest.mark.parametrize(
    ("cached", "asked"),
    [
        (
            "Drop the staging tables in the reporting database now",
            "Do not drop the staging tables in the reporting database now",
        ),
        (
            "Retry the failed upload to the artifact store 3 times",
            "Retry the failed upload to the artifact store 5 times",
        ),
        (
            "Keep the last 100 log lines of the scribe worker",
            "Keep the last 1000 log lines of the scribe worker",
        ),
    ],
)
async def test_guard_refuses_similar_prompts_across_negation_or_numbers(
    pg_url: str, cached: str, asked: str
) -> None:
    model = _model()
    async with adapters.open_database(pg_url) as db:
        cache = adapters.create_generation_cache(db, similarity_threshold=0.5)

        async def first() -> str:
            return "cached answer"

        async def second() -> str:
            return "fresh answer"

        await cache.get_or_generate(cached, model, {}, first)
        got = await cache.get_or_generate(asked, model, {}, second)
        assert got.outcome is CacheOutcome.GENERATED and got.text == "fresh answer"
        assert cache.statistics().guard_rejections == 1


async def test_ttl_and_invalidation(pg_url: str) -> None:
    model = _model()
    async with adapters.open_database(pg_url) as db:
        cache = adapters.create_generation_cache(db, ttl=60, similarity_threshold=None)
        n = 0

        async def gen() -> str:
            nonlocal n
            n += 1
            return f"v{n}"

        a = await cache.get_or_generate("prompt a", model, {}, gen)
        await backdate(db, "memory_generation_cache", 61, "cache_key = %s", a.key)
        again = await cache.get_or_generate("prompt a", model, {}, gen)
        assert (
            again.outcome is CacheOutcome.GENERATED and again.text == "v2"
        )  # expired: regenerated

        await cache.get_or_generate("prompt b", model, {}, gen)
        await cache.get_or_generate("prompt c", model, {"x": 1}, gen)
        assert await cache.invalidate(key=again.key) == 1
        assert (await cache.lookup("prompt a", model, {})) is None
        assert (await cache.lookup("prompt b", model, {})) is not None
        assert await cache.invalidate(older_than=3600) == 0
        await db.execute(
            "UPDATE memory_generation_cache SET created_at = now() - interval '2 hours'"
            " WHERE model = %s AND prompt = 'prompt b'",
            (model,),
        )
        assert await cache.invalidate(model=model, older_than=3600) == 1
        assert await cache.invalidate(model=model) == 1
        assert (await cache.lookup("prompt c", model, {"x": 1})) is None
        with pytest.raises(engine.InvalidArgumentError):
            await cache.invalidate()


async def test_generator_must_return_text(pg_url: str) -> None:
    async with adapters.open_database(pg_url) as db:
        cache = adapters.create_generation_cache(db)

        async def bad() -> str:
            return 42  # type: ignore[return-value]

        with pytest.raises(engine.GenerationCacheError):
            await cache.get_or_generate("p", _model(), {}, bad)
        with pytest.raises(engine.InvalidArgumentError):
            await cache.get_or_generate("", _model(), {}, bad)


async def _wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    # Polling: the state advances in database worker threads, not in trio tasks we could await.
    with trio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(0.005)


async def test_100_concurrent_misses_from_many_sessions_run_the_generator_once(
    pg_url: str,
) -> None:
    model = _model()
    release = trio.Event()
    started = 0

    async def generator() -> str:
        nonlocal started
        started += 1
        await release.wait()
        return "the one answer"

    results: list[engine.Generation] = []
    async with adapters.open_database(pg_url, pool_size=4) as db:
        cache = adapters.create_generation_cache(db)

        async def ask() -> None:
            results.append(await cache.get_or_generate("same prompt", model, {}, generator))

        async with engine.open_engine() as eng:
            sessions = [await eng.start_session(f"s{i}") for i in range(10)]
            for i in range(100):
                sessions[i % 10].start_soon(ask)
            await _wait_for(lambda: cache.single_flight.statistics().waiting == 99)
            release.set()
            for session in sessions:
                await session.close()
                assert session.state is engine.SessionState.COMPLETED
        assert started == 1
        assert len(results) == 100 and {r.text for r in results} == {"the one answer"}
        assert [r.outcome for r in results].count(CacheOutcome.GENERATED) == 1
        assert cache.statistics().generated == 1 and cache.statistics().shared == 99
        assert (
            await db.fetchval(
                "SELECT count(*) FROM memory_generation_cache WHERE model = %s", (model,)
            )
            == 1
        )


async def test_cancelled_leader_and_waiters_mixed_in(pg_url: str) -> None:
    model = _model()
    release = trio.Event()
    started = 0
    completed = 0

    async def generator() -> str:
        nonlocal started, completed
        started += 1
        await release.wait()
        completed += 1
        return f"answer {started}"

    results: dict[int, str] = {}
    scopes = [trio.CancelScope() for _ in range(100)]
    async with adapters.open_database(pg_url, pool_size=4) as db:
        cache = adapters.create_generation_cache(db)

        async def ask(i: int) -> None:
            with scopes[i]:
                results[i] = (await cache.get_or_generate("prompt x", model, {}, generator)).text

        async with trio.open_nursery() as nursery:
            for i in range(100):
                nursery.start_soon(ask, i)
                if i == 0:  # caller 0 reaches the generator first and leads
                    await _wait_for(lambda: started == 1)
            await _wait_for(lambda: cache.single_flight.statistics().waiting == 99)
            cancelled = {0, *range(10, 100, 7)}  # the leader and a few waiters
            for i in cancelled:
                scopes[i].cancel()
            await _wait_for(lambda: started == 2)  # a waiter took over
            release.set()
        assert completed == 1 and started == 2
        assert set(results) == set(range(100)) - cancelled
        assert set(results.values()) == {"answer 2"}
        assert cache.single_flight.statistics().takeovers == 1
        assert cache.single_flight.statistics().in_flight == 0
        assert (
            await db.fetchval(
                "SELECT response FROM memory_generation_cache WHERE model = %s", (model,)
            )
            == "answer 2"
        )


async def test_store_then_lookup_round_trips_and_replaces(pg_url: str) -> None:
    model = _model()
    settings = {"temperature": 0.1, "stop": ["\n"]}
    prompt = "Name the three stages of the summary pipeline in order"
    async with adapters.open_database(pg_url) as db:
        cache = adapters.create_generation_cache(db, similarity_threshold=0.8)
        assert await cache.lookup(prompt, model, settings) is None
        key = await cache.store(prompt, model, settings, "collect, summarize, store")
        assert key == generation_key(prompt, model, settings)
        found = await cache.lookup(prompt, model, {"stop": ["\n"], "temperature": 0.1})
        assert found is not None and found.outcome is CacheOutcome.EXACT
        assert (found.text, found.key, found.similarity) == ("collect, summarize, store", key, 1.0)
        near = await cache.lookup(prompt.replace("Name", "Please name"), model, settings)
        assert near is not None and near.outcome is CacheOutcome.SIMILAR
        assert near.matched_key == key
        assert await cache.lookup(prompt, model, {"temperature": 0.2}) is None
        assert await cache.store(prompt, model, settings, "replaced") == key
        again = await cache.lookup(prompt, model, settings)
        assert again is not None and again.text == "replaced"

        async def never() -> str:
            raise AssertionError("a stored answer is served without generating")

        served = await cache.get_or_generate(prompt, model, settings, never)
        assert served.outcome is CacheOutcome.EXACT and served.text == "replaced"


async def test_store_expires_and_refuses_bad_input(pg_url: str) -> None:
    model = _model()
    async with adapters.open_database(pg_url) as db:
        cache = adapters.create_generation_cache(db, similarity_threshold=None)
        key = await cache.store("short lived", model, {}, "gone soon", ttl=30)
        await backdate(db, "memory_generation_cache", 31, "cache_key = %s", key)
        assert await cache.lookup("short lived", model, {}) is None
        for bad in (
            {"prompt": ""},
            {"model": ""},
            {"settings": {"x": object()}},
            {"response": 5},
            {"ttl": 0},
            {"prompt": "p" * (engine.GENERATION_TEXT_MAX + 1)},
        ):
            args = {"prompt": "p", "model": model, "settings": {}, "response": "r"} | bad
            ttl = args.pop("ttl", None)
            with pytest.raises(engine.InvalidArgumentError):
                await cache.store(**args, ttl=ttl)  # type: ignore[arg-type]
        assert await cache.lookup("p", model, {}) is None
        with trio.CancelScope() as scope:
            scope.cancel()
            await cache.store("cancelled", model, {}, "never stored")
        assert await cache.lookup("cancelled", model, {}) is None


async def test_exact_only_lookups_never_take_a_similar_prompt(pg_url: str) -> None:
    model, settings = _model(), {"temperature": 0.0}
    prompt = "Summarize the worklog of the session that moved the parser into its own module"

    async def answer(text: str) -> str:
        return text

    async with adapters.open_database(pg_url) as db:
        cache = adapters.create_generation_cache(db, similarity_threshold=0.5)
        await cache.get_or_generate(prompt, model, settings, lambda: answer("first"))
        near = prompt + " today"
        assert (await cache.lookup(near, model, settings)) is not None
        assert (await cache.lookup(near, model, settings, similar=False)) is None
        fresh = await cache.get_or_generate(
            near, model, settings, lambda: answer("second"), similar=False
        )
        assert fresh.outcome is CacheOutcome.GENERATED and fresh.text == "second"
        again = await cache.get_or_generate(
            near, model, settings, lambda: answer("third"), similar=False
        )
        assert again.outcome is CacheOutcome.EXACT and again.text == "second"
