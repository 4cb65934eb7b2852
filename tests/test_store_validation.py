"""The stores' shared argument rules (engine._ports._validation): one meaning of a time to live and of a
limit, checked by the engine's records and by every store with the same error."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from memory_support import new_session_id, open_store

import adapters
import engine
from engine import InvalidArgumentError, NewDecision, NewGeneration, NewMessage, SourceQuery

# --------------------------------------------------------------------------------- the rules


@pytest.mark.parametrize("ttl", [True, False, 0, -1, 0.0, math.inf, math.nan, "5", [5]])
def test_a_ttl_is_positive_finite_seconds_and_never_a_bool(ttl: object) -> None:
    with pytest.raises(InvalidArgumentError, match="ttl"):
        engine.check_ttl(ttl)


def test_a_ttl_of_none_means_never_unless_one_is_required() -> None:
    assert engine.check_ttl(None) is None
    assert engine.check_ttl(2) == 2.0
    assert engine.check_ttl(0.5) == 0.5
    with pytest.raises(InvalidArgumentError, match="required"):
        engine.check_ttl(None, required=True)


@pytest.mark.parametrize("limit", [0, -1, True, False, 1.0, "3", None])
def test_a_limit_is_an_int_of_at_least_one(limit: object) -> None:
    with pytest.raises(InvalidArgumentError, match="limit must be an int >= 1"):
        engine.check_limit(limit)


def test_an_optional_limit_of_none_means_no_limit() -> None:
    assert engine.check_optional_limit(None) is None
    assert engine.check_optional_limit(1) == 1
    with pytest.raises(InvalidArgumentError, match="limit must be an int >= 1"):
        engine.check_optional_limit(0)


def test_an_age_may_be_zero_but_a_duration_may_not() -> None:
    assert engine.check_seconds("older_than", 0, allow_zero=True) == 0.0
    with pytest.raises(InvalidArgumentError, match="idle"):
        engine.check_seconds("idle", 0)
    with pytest.raises(InvalidArgumentError, match="older_than"):
        engine.check_invalidate_filters(None, None, True)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="at least one"):
        engine.check_invalidate_filters(None, None, None)


# ------------------------------------------------------------------------------- the records


def _records_with_ttl(ttl: Any) -> list[Callable[[], object]]:
    return [
        lambda: NewMessage("user", "x", ttl=ttl),
        lambda: NewDecision("a title", ttl=ttl),
        lambda: NewGeneration("k", "p", "m", {}, "h", "r", ttl=ttl),
        lambda: engine.SessionRecord(id="s", name="s", idle_timeout=ttl),
    ]


@pytest.mark.parametrize("index", range(4))
@pytest.mark.parametrize("ttl", [True, 0, -2.5, math.inf])
def test_every_record_refuses_the_same_seconds(index: int, ttl: object) -> None:
    with pytest.raises(InvalidArgumentError, match="finite seconds > 0"):
        _records_with_ttl(ttl)[index]()


def test_records_keep_good_values() -> None:
    assert NewMessage("user", "x", ttl=3).ttl == 3.0
    assert NewDecision("t", ttl=None).ttl is None
    assert engine.SessionRecord(id="s", name="s", idle_timeout=60).idle_timeout == 60.0
    assert SourceQuery("q", None, None, 1).limit == 1


def test_a_source_query_needs_a_limit_of_at_least_one() -> None:
    with pytest.raises(InvalidArgumentError, match="limit must be an int >= 1"):
        SourceQuery("q", None, None, 0)
    with pytest.raises(InvalidArgumentError, match="limit must be an int >= 1"):
        SourceQuery("q", None, None, True)


def test_a_generation_cache_refuses_true_as_its_ttl() -> None:
    class Unused:  # never reached: the constructor refuses first
        pass

    with pytest.raises(InvalidArgumentError, match="ttl"):
        engine.GenerationCache(Unused(), ttl=True)  # type: ignore[arg-type]


def test_bad_decision_fields_are_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="entities"):
        NewDecision("t", entities=["ok", 3])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match="session_id"):
        NewDecision("t", session_id="")
    with pytest.raises(InvalidArgumentError, match="JSON"):
        NewMessage("user", "x", metadata={"bad": object()})


# -------------------------------------------------------------------------------- the stores


async def _refusal(call: Callable[[], Awaitable[object]]) -> str:
    with pytest.raises(InvalidArgumentError) as exc_info:
        await call()
    return str(exc_info.value)


async def test_every_store_refuses_a_zero_limit_the_same_way(pg_url: str) -> None:
    expected = "limit must be an int >= 1, got 0"
    sid = new_session_id()
    async with (
        open_store(pg_url) as (db, store),
        adapters.open_session_registry(db, owner_id="validation") as registry,
    ):
        worklog = adapters.PostgresWorklogStore(db)
        generations = adapters.PostgresGenerationStore(db)
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.search_messages("x", limit=0),
            lambda: store.search_decisions("x", limit=0),
            lambda: store.get_messages(sid, limit=0),
            lambda: worklog.entries(sid, limit=0),
            lambda: registry.query(limit=0),
            lambda: generations.find_similar(
                "p", model="m", settings_hash="h", threshold=0.5, limit=0
            ),
        ]
        assert [await _refusal(c) for c in calls] == [expected] * len(calls)
        # None still means "no limit" where a call allows it.
        assert await store.get_messages(sid, limit=None) == []
        assert await worklog.entries(sid, limit=None) == []


async def test_every_store_refuses_true_as_a_ttl_the_same_way(pg_url: str) -> None:
    expected = "ttl must be finite seconds > 0, got True"
    sid = new_session_id()
    async with open_store(pg_url) as (_, store):
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.add_message(sid, "user", "x", ttl=True),
            lambda: store.set_fact(sid, "t", "k", 1, ttl=True),
            lambda: store.set_preference("u", "k", 1, confidence=0.5, source="s", ttl=True),
            lambda: store.cache_put("key", 1, ttl=True),
        ]
        assert [await _refusal(c) for c in calls] == [expected] * len(calls)
        # Nothing was written by the refused calls.
        assert await store.get_messages(sid) == []
        assert await store.get_fact(sid, "t", "k") is None
        assert await store.cache_get("key") is None


async def test_a_store_refuses_a_bool_confidence(pg_url: str) -> None:
    async with open_store(pg_url) as (_, store):
        with pytest.raises(InvalidArgumentError, match="confidence"):
            await store.set_preference("u", "k", 1, confidence=True, source="s")


async def test_the_generation_store_refuses_an_invalidation_without_filters(pg_url: str) -> None:
    async with open_store(pg_url) as (db, _):
        with pytest.raises(InvalidArgumentError, match="at least one"):
            await adapters.PostgresGenerationStore(db).invalidate()
        cache = adapters.create_generation_cache(db)
        with pytest.raises(InvalidArgumentError, match="older_than"):
            await cache.invalidate(older_than=-1)


async def test_reads_refuse_empty_keys_like_writes_do(pg_url: str) -> None:
    async with open_store(pg_url) as (_, store):
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.get_fact("", "t", "k"),
            lambda: store.list_facts(""),
            lambda: store.delete_fact("s", "", "k"),
            lambda: store.get_preference("", "k"),
            lambda: store.list_preferences(""),
            lambda: store.cache_get(""),
            lambda: store.get_messages(""),
        ]
        refusals = [await _refusal(c) for c in calls]
        assert all("must be a non-empty string, got ''" in r for r in refusals), refusals
