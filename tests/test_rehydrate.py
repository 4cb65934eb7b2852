"""The rehydrator with in-process sources (pure trio, MockClock where timing matters)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio
import trio.testing

import engine
from engine import (
    CallableSource,
    DropReason,
    Evidence,
    GitContextSource,
    SourceQuery,
    SourceStatus,
    estimate_tokens,
    rehydrate,
)


def _source(
    name: str,
    texts: Sequence[str],
    *,
    delay: float = 0.0,
    error: Exception | None = None,
    pinned: bool = False,
    seen: list[SourceQuery] | None = None,
) -> CallableSource:
    async def search(query: SourceQuery) -> list[Evidence]:
        if seen is not None:
            seen.append(query)
        await trio.sleep(delay)
        if error is not None:
            raise error
        return [Evidence(name, str(i), text, pinned=pinned) for i, text in enumerate(texts, 1)]

    return CallableSource(name, search)


async def test_slow_and_failing_sources_do_not_hold_up_the_others(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled_at: list[float] = []

    async def slow_search(query: SourceQuery) -> list[Evidence]:
        try:
            await trio.sleep(30)
        finally:
            cancelled_at.append(trio.current_time())
        raise AssertionError("never reached")  # pragma: no cover

    start = trio.current_time()
    bundle = await rehydrate(
        "what did we decide about caching",
        sources=[
            _source("messages", ["we cache bundles for 60 s"], delay=0.02),
            CallableSource("slow", slow_search),
            _source("broken", [], delay=0.01, error=RuntimeError("index corrupt")),
            _source("decisions", ["decision: cache in PostgreSQL"], delay=0.05),
        ],
        timeout=0.25,
    )
    assert trio.current_time() - start == pytest.approx(0.25)
    assert cancelled_at == [pytest.approx(start + 0.25)]  # cancelled at the deadline, not awaited
    status = {r.name: r.status for r in bundle.sources}
    assert status == {
        "messages": SourceStatus.OK,
        "slow": SourceStatus.TIMEOUT,
        "broken": SourceStatus.ERROR,
        "decisions": SourceStatus.OK,
    }
    assert bundle.source("slow").elapsed == pytest.approx(0.25)
    assert bundle.source("messages").elapsed == pytest.approx(0.02)
    assert bundle.source("broken").error == "RuntimeError: index corrupt"
    assert {i.citation for i in bundle.items} == {"messages:1", "decisions:1"}
    assert bundle.elapsed == pytest.approx(0.25)


async def test_sources_run_in_parallel(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    bundle = await rehydrate(
        "q",
        sources=[_source(f"s{i}", [f"text {i}"], delay=0.1) for i in range(5)],
        timeout=1.0,
    )
    assert trio.current_time() - start == pytest.approx(0.1)  # not 0.5
    assert all(r.status is SourceStatus.OK for r in bundle.sources)


async def test_per_source_limits_and_timeouts(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[SourceQuery] = []
    bundle = await rehydrate(
        "q",
        sources=[
            _source("a", [f"alpha {i} " * 3 + chr(65 + i) * 9 for i in range(10)], seen=seen),
            _source("b", ["bravo"], delay=0.2),
        ],
        limits={"a": 3},
        source_timeouts={"b": 0.1},
        timeout=1.0,
        session="S-1",
        role="reviewer",
    )
    assert seen == [SourceQuery(text="q", session_id="S-1", role="reviewer", limit=3)]
    assert bundle.source("a").count == 3  # a source returning more than its limit is cut
    assert bundle.source("b").status is SourceStatus.TIMEOUT
    assert bundle.source("b").elapsed == pytest.approx(0.1)


async def test_pinned_first_then_fused_order_with_citations() -> None:
    async def ranked(query: SourceQuery) -> list[Evidence]:
        return [
            Evidence(
                "text", "x", "found by both full text and trigram", ranks={"fts": 2, "trgm": 1}
            ),
            Evidence("text", "y", "found by full text only, ranked first", ranks={"fts": 1}),
        ]

    bundle = await rehydrate(
        "q",
        sources=[
            CallableSource("text", ranked),
            _source("facts", ["goal: ship the memory issue"], pinned=True),
        ],
    )
    assert [i.citation for i in bundle.items] == ["facts:1", "text:x", "text:y"]
    assert bundle.items[0].pinned and not bundle.items[1].pinned
    assert bundle.text.splitlines()[1] == "[text:x] found by both full text and trigram"
    assert bundle.items[1].score == pytest.approx(1 / 62 + 1 / 61)


async def test_budget_is_never_exceeded_and_drops_are_reported() -> None:
    texts = [f"evidence {i}: " + " ".join(f"t{i}w{j}" for j in range(i * 4)) for i in range(12)]
    for budget in (1, 10, 25, 60, 200, 5000):
        bundle = await rehydrate("q", sources=[_source("s", texts)], token_budget=budget)
        assert bundle.tokens <= budget
        assert estimate_tokens(bundle.text) <= budget
        assert bundle.tokens == sum(i.tokens for i in bundle.items)
        leftover = budget - bundle.tokens
        for dropped in bundle.dropped:
            assert dropped.reason is DropReason.BUDGET
            assert dropped.tokens > leftover
        assert len(bundle.items) + len(bundle.dropped) == len(texts)


async def test_near_duplicates_are_dropped_across_sources() -> None:
    text = "We decided to store the generation cache in PostgreSQL with a TTL of one hour."
    bundle = await rehydrate(
        "q",
        sources=[
            _source("messages", [text, "Something else entirely about the websocket feed."]),
            _source("decisions", [text.replace("one hour", "one hour!")]),
        ],
    )
    kept = [i.citation for i in bundle.items]
    assert len(kept) == 2
    (dup,) = bundle.dropped
    assert dup.reason is DropReason.DUPLICATE
    assert {dup.citation, dup.duplicate_of} == {"messages:1", "decisions:1"}
    assert dup.duplicate_of in kept


async def test_digest_follows_the_content() -> None:
    a = await rehydrate("q", sources=[_source("s", ["one", "two"])])
    b = await rehydrate("q", sources=[_source("s", ["one", "two"])])
    c = await rehydrate("q", sources=[_source("s", ["one", "three"])])
    assert a.digest == b.digest != c.digest
    assert len(a.digest) == 64
    assert a.to_dict()["items"][0]["citation"] == "s:1"


async def test_comparable_scores_rank_the_sources_together() -> None:
    """Each source's rank 1 counts alike unless the sources score a ranking alike: then the
    items are ranked across sources by that score, and a weak best match of one source falls
    behind the strong matches of another."""

    texts = iter(["the cart total", "VAT per line", "refunds to the card", "integer cents"] * 2)

    def source(name: str, similarities: Sequence[float], *, scored: bool) -> CallableSource:
        async def search(query: SourceQuery) -> list[Evidence]:
            return [
                Evidence(
                    name,
                    str(i),
                    next(texts),
                    ranks={"vec": i},
                    scores={"vec": s} if scored else {},
                )
                for i, s in enumerate(similarities, 1)
            ]

        return CallableSource(name, search)

    for scored in (False, True):
        bundle = await rehydrate(
            "q",
            sources=[
                source("messages", [0.9, 0.8, 0.3], scored=scored),
                source("decisions", [0.5], scored=scored),
            ],
        )
        got = [i.citation for i in bundle.items]
        if scored:
            assert got == ["messages:1", "messages:2", "decisions:1", "messages:3"]
            assert bundle.items[2].score == pytest.approx(1 / 63)
            assert bundle.items[2].evidence.scores == {"vec": 0.5}
        else:
            assert got == ["decisions:1", "messages:1", "messages:2", "messages:3"]
    pooled = engine.pooled_ranks(
        {"a": {"fts": 1, "vec": 1}, "b": {"fts": 1, "vec": 1}, "c": {"vec": 2}, "d": {"git": 1}},
        {"a": {"vec": 0.2}, "b": {"vec": 0.7}, "c": {"vec": 0.2}},
    )
    assert pooled == {
        "a": {"fts": 1, "vec": 2},
        "b": {"fts": 1, "vec": 1},
        "c": {"vec": 3},
        "d": {"git": 1},
    }


async def test_role_weights_reorder_sources() -> None:
    sources = [_source("messages", ["message text"]), _source("decisions", ["decision text"])]
    planner = await rehydrate("q", sources=sources, role="planner")
    researcher = await rehydrate("q", sources=sources, role="researcher")
    assert planner.items[0].citation == "decisions:1"
    assert researcher.items[0].citation == "messages:1"


async def test_bad_arguments_are_typed_errors() -> None:
    ok = [_source("s", ["x"])]
    with pytest.raises(engine.InvalidArgumentError):
        await rehydrate("", sources=ok)
    with pytest.raises(engine.InvalidArgumentError):
        await rehydrate("q", sources=ok, role="boss")
    with pytest.raises(engine.InvalidArgumentError):
        await rehydrate("q", sources=ok, token_budget=0)
    with pytest.raises(engine.InvalidArgumentError):
        await rehydrate("q", sources=ok, timeout=0)
    with pytest.raises(engine.InvalidArgumentError):
        await rehydrate("q", sources=ok, limits={"s": 0})
    with pytest.raises(engine.RehydrateError):
        await rehydrate("q", sources=[_source("s", []), _source("s", [])])
    with pytest.raises(engine.RehydrateError):
        await rehydrate("q", sources=[_source("a:b", [])])


async def test_outer_cancellation_cancels_every_source(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[str] = []

    def sleeper(name: str) -> CallableSource:
        async def search(query: SourceQuery) -> list[Evidence]:
            try:
                await trio.sleep(10)
            except trio.Cancelled:
                cancelled.append(name)
                raise
            return []  # pragma: no cover

        return CallableSource(name, search)

    with trio.move_on_after(0.1) as scope:
        await rehydrate("q", sources=[sleeper("a"), sleeper("b")], timeout=5)
    assert scope.cancelled_caught
    assert sorted(cancelled) == ["a", "b"]


async def test_rehydrator_object_and_git_context_source(
    autojump_clock: trio.testing.MockClock,
) -> None:
    asked: list[str | None] = []

    async def git_sections(session_id: str | None) -> dict[str, str]:
        asked.append(session_id)
        return {
            "branch": "feat/B-1042-memory",
            "status": "M engine/_rehydrate.py",
            "log": "abc123 Add the rehydrator",
            "diffstat": "",
        }

    rehydrator = engine.Rehydrator(
        [GitContextSource(git_sections), _source("notes", ["rehydrator notes"])],
        token_budget=500,
        timeout=0.5,
    )
    bundle = await rehydrator.rehydrate("rehydrator changes", session="S-9", role="coder")
    assert asked == ["S-9"]
    git_items = [i for i in bundle.items if i.evidence.source == "git"]
    assert [i.evidence.id for i in git_items] == ["log", "branch", "status"]
    assert "git:diffstat" not in {i.citation for i in bundle.items}


async def test_bundle_round_trips_through_its_dict() -> None:
    async def ranked(query: SourceQuery) -> list[Evidence]:
        return [Evidence("s", "1", "one", ranks={"fts": 1}, metadata={"seq": 3})]

    bundle = await rehydrate(
        "q", sources=[CallableSource("s", ranked), _source("p", ["pinned"], pinned=True)]
    )
    again = engine.Bundle.from_dict(bundle.to_dict())
    assert again.text == bundle.text and again.digest == bundle.digest
    assert again.items[1].evidence.metadata == {"seq": 3}
    assert [r.status for r in again.sources] == [r.status for r in bundle.sources]
    assert not again.cached and engine.Bundle.from_dict(bundle.to_dict(), cached=True).cached
    with pytest.raises(engine.RehydrateError):
        engine.Bundle.from_dict({"items": "nope"})


async def test_a_source_returning_something_else_is_reported_as_an_error() -> None:
    async def wrong(query: SourceQuery) -> list[Evidence]:
        return ["just a string"]  # type: ignore[list-item]

    async def renamed(query: SourceQuery) -> list[Evidence]:
        return [Evidence("someone-else", "1", "text")]

    bundle = await rehydrate(
        "q", sources=[CallableSource("wrong", wrong), CallableSource("right", renamed)]
    )
    assert bundle.source("wrong").status is SourceStatus.ERROR
    assert "not Evidence" in (bundle.source("wrong").error or "")
    assert [i.citation for i in bundle.items] == ["right:1"]  # cited under the source's name
