"""The summary pipeline against the real database: bounded, never blocking, LOW priority, nothing lost."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio.testing

import adapters
import engine
from engine._ports._summary_record import Summary
from engine._ports._worklog_records import EntryKind, WorklogEntry
from engine._scribe._summary import HeuristicSummarizer
from engine._scribe._summary_pipeline import SummaryPipeline


@asynccontextmanager
async def _stores(
    pg_url: str, eng: engine.Engine
) -> AsyncIterator[tuple[adapters.SessionRegistry, adapters.PostgresWorklogStore]]:
    async with adapters.open_database(pg_url, gate=eng.gate("db")) as db:
        async with adapters.open_session_registry(db) as registry:
            yield registry, adapters.PostgresWorklogStore(db)


async def _session_with_notes(
    registry: adapters.SessionRegistry, store: adapters.PostgresWorklogStore, *notes: str
) -> str:
    sid = f"pipe-{uuid.uuid4().hex[:12]}"
    await registry.register(engine.SessionRecord(id=sid, name=sid, state="active"))
    await store.append(
        [
            WorklogEntry(sid, i + 1, EntryKind.NOTE, time.time(), {"text": text})
            for i, text in enumerate(notes)
        ]
    )
    return sid


async def test_requests_never_block_and_none_is_lost(pg_url: str) -> None:
    async with engine.open_engine() as eng, _stores(pg_url, eng) as (registry, store):
        seen: list[Summary] = []
        pipeline = SummaryPipeline(
            eng, store, HeuristicSummarizer(), buffer=2, min_interval=0, on_summary=seen.append
        )
        sids = [await _session_with_notes(registry, store, f"Decision: d{i}") for i in range(12)]
        # no worker runs yet: the channel fills, the rest waits in the overflow list
        for sid in sids:
            for _ in range(3):
                pipeline.request_nowait(sid)
        stats = pipeline.statistics()
        assert stats.requests == 36 and stats.merged == 24 and stats.overflowed == 10
        assert stats.queued == 12
        async with trio.open_nursery() as n:
            n.start_soon(pipeline.run)
            with trio.fail_after(20):
                await pipeline.wait_idle()
            n.cancel_scope.cancel()
        assert {s.session_id for s in seen} == set(sids)
        for sid in sids:
            latest = await store.latest_summary(sid)
            assert latest is not None and latest.version == 1 and latest.decisions
            assert pipeline.latest(sid) == latest


async def test_summaries_fold_new_entries_and_finish(pg_url: str) -> None:
    async with engine.open_engine() as eng, _stores(pg_url, eng) as (registry, store):
        pipeline = SummaryPipeline(eng, store, HeuristicSummarizer(), min_interval=0)
        sid = await _session_with_notes(registry, store, "Decision: one")
        async with trio.open_nursery() as n:
            n.start_soon(pipeline.run)
            pipeline.request_nowait(sid)
            await pipeline.wait_idle()
            # nothing new: no new version
            pipeline.request_nowait(sid)
            await pipeline.wait_idle()
            assert pipeline.statistics().skipped == 1
            await store.append(
                [WorklogEntry(sid, 2, EntryKind.NOTE, time.time(), {"text": "Decision: two"})]
            )
            pipeline.request_nowait(sid, final=True)
            await pipeline.wait_idle()
            n.cancel_scope.cancel()
        versions = await store.summaries(sid)
        assert [s.version for s in versions] == [1, 2]
        assert versions[-1].decisions == ("one", "two") and versions[-1].final
        assert versions[-1].last_seq == 2


async def test_work_is_admitted_at_low_priority(pg_url: str) -> None:
    config = engine.EngineConfig(gates={"summarizer": 1})
    async with engine.open_engine(config) as eng, _stores(pg_url, eng) as (registry, store):
        pipeline = SummaryPipeline(eng, store, HeuristicSummarizer(), min_interval=0)
        sid = await _session_with_notes(registry, store, "note")
        gate = eng.gate("summarizer")
        async with trio.open_nursery() as n:
            n.start_soon(pipeline.run)
            async with gate.acquire(engine.Priority.HIGH):
                pipeline.request_nowait(sid)
                await trio.testing.wait_all_tasks_blocked()
                stats = gate.statistics()
                assert stats.waiting == 1 and stats.waiting_by_priority == {"low": 1}
                assert await store.latest_summary(sid) is None
            await pipeline.wait_idle()
            n.cancel_scope.cancel()
        assert await store.latest_summary(sid) is not None


async def test_min_interval_merges_bursts(pg_url: str, mock_clock: trio.testing.MockClock) -> None:
    # trio's clock stands still until jumped (the database's threads run in real time meanwhile)
    async with engine.open_engine() as eng, _stores(pg_url, eng) as (registry, store):
        pipeline = SummaryPipeline(eng, store, HeuristicSummarizer(), min_interval=30)
        sid = await _session_with_notes(registry, store, "first")
        async with trio.open_nursery() as n:
            n.start_soon(pipeline.run)
            pipeline.request_nowait(sid)
            await pipeline.wait_idle()
            for seq in range(2, 6):
                entry = WorklogEntry(sid, seq, EntryKind.NOTE, time.time(), {"text": f"n{seq}"})
                await store.append([entry])
                pipeline.request_nowait(sid)
            await trio.testing.wait_all_tasks_blocked()
            assert [v.version for v in await store.summaries(sid)] == [1]
            mock_clock.jump(30)
            await pipeline.wait_idle()
            n.cancel_scope.cancel()
        versions = await store.summaries(sid)
        assert [v.version for v in versions] == [1, 2] and versions[-1].last_seq == 5
        assert pipeline.statistics().merged == 3


async def test_a_failing_summary_is_reported_and_the_next_request_retries(pg_url: str) -> None:
    class Flaky:
        calls = 0

        async def summarize(
            self, session_id: str, previous: Summary | None, entries: object, *, final: bool = False
        ) -> Summary:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise engine.WorklogError("model unavailable")
            return await HeuristicSummarizer().summarize(session_id, previous, entries, final=final)  # type: ignore[arg-type]

    async with engine.open_engine() as eng, _stores(pg_url, eng) as (registry, store):
        pipeline = SummaryPipeline(eng, store, Flaky(), min_interval=0)
        sid = await _session_with_notes(registry, store, "x")
        async with eng.open_subscription(["session.summary"]) as sub, trio.open_nursery() as n:
            n.start_soon(pipeline.run)
            pipeline.request_nowait(sid)
            await pipeline.wait_idle()
            err = sub.receive_nowait()
            assert "model unavailable" in err.payload["error"]
            assert pipeline.statistics().errors == 1
            pipeline.request_nowait(sid)
            await pipeline.wait_idle()
            n.cancel_scope.cancel()
        assert (await store.latest_summary(sid)) is not None


async def test_summaries_are_scrubbed_before_they_are_stored(pg_url: str) -> None:
    # The notes were written straight to the store (no capture scrubbed them), as a summarizer
    # may quote what it read from anywhere.
    key = "ghp_" + "Zq3vB8nR2kT5wY1xC4mJ7pL0sD6fH9gA2eU5"
    async with engine.open_engine() as eng, _stores(pg_url, eng) as (registry, store):
        pipeline = SummaryPipeline(
            eng, store, HeuristicSummarizer(), min_interval=0, privacy=engine.Privacy()
        )
        sid = await _session_with_notes(
            registry, store, f"Decision: keep <private>the pin 4471</private> and {key}"
        )
        async with trio.open_nursery() as n:
            n.start_soon(pipeline.run)
            pipeline.request_nowait(sid, final=True)
            await pipeline.wait_idle()
            n.cancel_scope.cancel()
        (stored,) = await store.summaries(sid)
        assert stored.decisions == ("keep [private] and [redacted:github-token]",)
        assert "4471" not in repr(stored) and key not in repr(stored)
