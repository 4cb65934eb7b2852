"""The worklog store contract: atomic appends, ordered reads, conflicts, summaries."""

from __future__ import annotations

import time

import pytest
import trio
from contracts.backends import SessionsBackend

import engine
from engine._ports._worklog_store import SummaryConflictError, WorklogConflictError


def _note(sid: str, seq: int, text: str, at: float | None = None) -> engine.WorklogEntry:
    return engine.WorklogEntry(
        sid, seq, engine.EntryKind.NOTE, time.time() if at is None else at, {"text": text}
    )


async def test_appends_are_read_back_in_seq_order(sessions: SessionsBackend) -> None:
    async with sessions.open_stores() as (reg, log):
        assert isinstance(log, engine.WorklogStore)
        await reg.register(engine.SessionRecord(id="s", name="s", state=engine.SessionState.ACTIVE))
        assert await log.last_seq("s") == 0 and await log.entries("s") == []
        await log.append([])  # nothing to store is no error
        first = [_note("s", 1, "one"), _note("s", 2, "two")]
        await log.append(first)
        files = engine.WorklogEntry(
            "s",
            3,
            engine.EntryKind.FILES,
            time.time(),
            {"created": ["a.py"], "modified": [], "deleted": [], "moved": []},
        )
        await log.append([files, _note("s", 4, "four")])
        got = await log.entries("s")
        assert [e.seq for e in got] == [1, 2, 3, 4]
        assert got[:2] == first and got[2] == files
        assert got[2].files == ("a.py",)
        assert await log.last_seq("s") == 4
        assert [e.seq for e in await log.entries("s", after_seq=2)] == [3, 4]
        assert [e.seq for e in await log.entries("s", limit=3)] == [1, 2, 3]
        assert [e.seq for e in await log.entries("s", limit=3, newest=True)] == [2, 3, 4]
        assert [e.seq for e in await log.entries("s", after_seq=3, limit=3, newest=True)] == [4]
        # paging back: the entries before a seq, the newest of them first to go
        assert [e.seq for e in await log.entries("s", before_seq=4, limit=2, newest=True)] == [2, 3]
        assert [e.seq for e in await log.entries("s", before_seq=2, limit=2, newest=True)] == [1]
        assert await log.entries("s", before_seq=1) == []
        assert [e.seq for e in await log.entries("s", after_seq=1, before_seq=4)] == [2, 3]
        assert await log.entries("other") == []
        for bad in (0, -1, True):  # a limit is an int >= 1 (the shared store rules)
            with pytest.raises(engine.InvalidArgumentError):
                await log.entries("s", limit=bad)


async def test_a_stored_seq_is_a_conflict_and_nothing_of_the_batch_is_kept(
    sessions: SessionsBackend,
) -> None:
    async with sessions.open_stores() as (reg, log):
        await reg.register(engine.SessionRecord(id="s", name="s", state=engine.SessionState.ACTIVE))
        await log.append([_note("s", 1, "one")])
        with pytest.raises(WorklogConflictError):
            await log.append([_note("s", 2, "two"), _note("s", 1, "again")])
        with pytest.raises(engine.WorklogError):  # the root of the worklog's errors
            await log.append([_note("s", 1, "again")])
        assert [e.payload["text"] for e in await log.entries("s")] == ["one"]
        with pytest.raises(engine.StoreNotFoundError):
            await log.append([_note("unregistered", 1, "x")])


async def test_concurrent_writers_of_one_seq_one_wins(sessions: SessionsBackend) -> None:
    async with sessions.open_stores() as (reg, log):
        await reg.register(engine.SessionRecord(id="s", name="s", state=engine.SessionState.ACTIVE))
        outcomes: list[str] = []

        async def write(k: int) -> None:
            try:
                await log.append([_note("s", 1, f"writer {k}")])
                outcomes.append("stored")
            except WorklogConflictError:
                outcomes.append("conflict")

        async with trio.open_nursery() as nursery:
            for k in range(4):
                nursery.start_soon(write, k)
        assert sorted(outcomes) == ["conflict"] * 3 + ["stored"]
        assert len(await log.entries("s")) == 1


async def test_an_append_moves_the_sessions_last_activity_forward(
    sessions: SessionsBackend,
) -> None:
    async with sessions.open_stores() as (reg, log):
        start = time.time() - 600
        rec = await reg.register(
            engine.SessionRecord(
                id="s", name="s", state=engine.SessionState.ACTIVE, last_activity=start
            )
        )
        await log.append([_note("s", 1, "older", at=start - 60)])
        assert (await reg.get("s")).last_activity == pytest.approx(start, abs=1e-5)
        later = start + 120
        await log.append([_note("s", 2, "newer", at=later)])
        after = await reg.get("s")
        assert after.last_activity == pytest.approx(later, abs=1e-5)
        assert after.version == rec.version  # activity, not a versioned change


async def test_summaries_are_versioned(sessions: SessionsBackend) -> None:
    async with sessions.open_stores() as (reg, log):
        await reg.register(engine.SessionRecord(id="s", name="s", state=engine.SessionState.ACTIVE))
        assert await log.latest_summary("s") is None and await log.summaries("s") == []
        one = engine.Summary(
            "s",
            1,
            key_ideas=("idea",),
            decisions=("use trio",),
            files_modified=("a.py",),
            metadata={"last_seq": 3, "branch": "main"},
        )
        two = engine.Summary("s", 2, progress=("done a",), metadata={"last_seq": 5, "final": True})
        await log.save_summary(one)
        await log.save_summary(two)
        assert await log.latest_summary("s") == two
        assert await log.summaries("s") == [one, two]
        assert (await log.latest_summary("s")).final  # type: ignore[union-attr]
        with pytest.raises(SummaryConflictError):
            await log.save_summary(engine.Summary("s", 2))
        assert await log.summaries("s") == [one, two]
        with pytest.raises(engine.StoreNotFoundError):
            await log.save_summary(engine.Summary("unregistered", 1))


@pytest.mark.parametrize("after", [0, 1, 5])
async def test_a_cancelled_append_is_all_or_nothing(sessions: SessionsBackend, after: int) -> None:
    async with sessions.open_stores() as (reg, log):
        await reg.register(engine.SessionRecord(id="s", name="s", state=engine.SessionState.ACTIVE))
        batch = [_note("s", seq, f"entry {seq}") for seq in (1, 2, 3)]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(log.append, batch)
            for _ in range(after):  # let the write get under way before the cancel lands
                await trio.lowlevel.checkpoint()
            nursery.cancel_scope.cancel()
        stored = await log.entries("s")
        assert stored in ([], batch)
        assert await log.last_seq("s") == len(stored)
