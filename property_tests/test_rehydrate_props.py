"""Properties of fusion and packing, and of a whole rehydration under a MockClock."""

from __future__ import annotations

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import (
    Bundle,
    CallableSource,
    DropReason,
    Evidence,
    SourceQuery,
    SourceStatus,
    estimate_tokens,
    rehydrate,
)
from engine._memory._fusion import fuse
from engine._memory._near_duplicates import jaccard, shingles
from engine._memory._packing import pack

WORDS = ["cache", "rehydrate", "postgres", "budget", "token", "fusion", "trio", "session", "x"]

texts = st.lists(st.sampled_from(WORDS), min_size=0, max_size=12).map(" ".join)


@st.composite
def evidence_lists(draw: st.DrawFn) -> dict[str, list[Evidence]]:
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True, max_size=4))
    results: dict[str, list[Evidence]] = {}
    for name in names:
        items = []
        for _ in range(draw(st.integers(0, 8))):
            ranks = draw(
                st.dictionaries(st.sampled_from(["fts", "trgm", "vec"]), st.integers(1, 20))
            )
            items.append(
                Evidence(
                    source=name,
                    id=str(draw(st.integers(0, 6))),  # repeated ids happen
                    text=draw(texts),
                    ranks=ranks,
                    pinned=draw(st.booleans()),
                )
            )
        results[name] = items
    return results


@settings(max_examples=300)
@given(results=evidence_lists(), budget=st.integers(1, 400), threshold=st.sampled_from([0.6, 0.9]))
def test_fuse_and_pack_invariants(
    results: dict[str, list[Evidence]], budget: int, threshold: float
) -> None:
    fused = fuse(results)
    kept, dropped = pack(fused, token_budget=budget, dedup_threshold=threshold)
    inputs = {e.citation for items in results.values() for e in items}
    kept_citations = [item.citation for item in kept]
    # budget: charged tokens and the rendered text both fit
    used = sum(item.tokens for item in kept)
    assert used <= budget
    assert estimate_tokens("\n".join(f"[{i.citation}] {i.evidence.text}" for i in kept)) <= budget
    # no duplicate: no citation twice, no two kept texts near-duplicates
    assert len(set(kept_citations)) == len(kept_citations)
    for i, a in enumerate(kept):
        for b in kept[i + 1 :]:
            assert jaccard(shingles(a.evidence.text), shingles(b.evidence.text)) < threshold
    # citations point at real items, and every distinct input is accounted for exactly once
    assert set(kept_citations) <= inputs
    accounted = kept_citations + [d.citation for d in dropped]
    assert sorted(accounted) == sorted(inputs)
    for d in dropped:
        if d.reason is DropReason.DUPLICATE:
            assert d.duplicate_of in kept_citations
        else:  # nothing dropped for budget would have fit in what is left
            assert d.tokens > budget - used
    # pinned first; then descending fused score
    flags = [item.pinned for item in kept]
    assert flags == sorted(flags, reverse=True)
    scores = [item.score for item in kept if not item.pinned]
    assert scores == sorted(scores, reverse=True)


@st.composite
def source_plans(draw: st.DrawFn) -> list[tuple[str, float, bool, list[str]]]:
    count = draw(st.integers(1, 5))
    return [
        (
            f"s{i}",
            draw(st.sampled_from([0.0, 0.01, 0.1, 0.49, 0.51, 5.0])),
            draw(st.booleans()),
            draw(st.lists(texts, max_size=5)),
        )
        for i in range(count)
    ]


@settings(max_examples=200)
@given(plans=source_plans(), budget=st.integers(1, 200))
def test_rehydrate_reports_every_source_and_never_waits_past_the_deadline(
    plans: list[tuple[str, float, bool, list[str]]], budget: int
) -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)

    def make(name: str, delay: float, fails: bool, items: list[str]) -> CallableSource:
        async def search(query: SourceQuery) -> list[Evidence]:
            await trio.sleep(delay)
            if fails:
                raise ValueError(name)
            return [Evidence(name, str(i), t) for i, t in enumerate(items)]

        return CallableSource(name, search)

    async def run() -> tuple[Bundle, float]:
        start = trio.current_time()
        bundle = await rehydrate(
            "query", sources=[make(*p) for p in plans], token_budget=budget, timeout=0.5
        )
        return bundle, trio.current_time() - start

    bundle, took = trio.run(run, clock=clock)
    assert took <= 0.5 + 1e-9
    assert [r.name for r in bundle.sources] == [p[0] for p in plans]
    for report, (_, delay, fails, items) in zip(bundle.sources, plans, strict=True):
        if delay > 0.5:
            assert report.status is SourceStatus.TIMEOUT
        elif fails:
            assert report.status is SourceStatus.ERROR
        else:
            assert report.status is SourceStatus.OK and report.count == len(items)
    assert bundle.tokens <= budget
    by_name = {p[0]: p for p in plans}
    for item in bundle.items:
        _, delay, fails, items = by_name[item.evidence.source]
        assert delay <= 0.5 and not fails
        assert items[int(item.evidence.id)] == item.evidence.text
