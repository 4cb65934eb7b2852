"""The worklog writer across store failures: carried in order, journaled, written once the store is back,
contiguous seqs, none twice; journals replayed after a crash.

The store is the in-memory one (held to the same contract as PostgreSQL's) behind a switch that makes
it fail as an unreachable database does; the journal is the real file one in a temporary directory
(and the in-memory one where the file format does not matter).
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import adapters
import engine
import engine.testing
from engine._ports._worklog_records import EndReason, EntryKind, WorklogEntry
from engine._scribe._entry_reconcile import ReplayReport, replay_journals
from engine._scribe._entry_writer import EntryWriter
from engine._scribe._journal_replayer import JournalReplayer

SID = "sess-1"


class OutageStore:
    """The in-memory worklog store, failing every call while ``down`` (as a database that went away);
    with ``commit_then_fail`` the next append is stored and then reported failed."""

    def __init__(self, real: engine.testing.InMemoryWorklogStore) -> None:
        self.real = real
        self.down = False
        self.commit_then_fail = 0
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise engine.WorklogError("database unavailable")

    async def append(self, entries: Sequence[WorklogEntry]) -> None:
        await trio.lowlevel.checkpoint()
        self._check()
        await self.real.append(entries)
        if self.commit_then_fail:
            self.commit_then_fail -= 1
            raise engine.WorklogError("connection lost after the commit")

    async def entries(self, session_id: str, **kw: Any) -> list[WorklogEntry]:
        await trio.lowlevel.checkpoint()
        self._check()
        return await self.real.entries(session_id, **kw)

    async def last_seq(self, session_id: str) -> int:
        await trio.lowlevel.checkpoint()
        self._check()
        return await self.real.last_seq(session_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@asynccontextmanager
async def stores(*sids: str) -> AsyncIterator[OutageStore]:
    db = engine.testing.InMemoryDatabase()
    async with engine.testing.open_in_memory_session_store(db) as reg:
        for sid in sids or (SID,):
            await reg.register(engine.SessionRecord(id=sid, name=sid, state="active"))
        yield OutageStore(engine.testing.InMemoryWorklogStore(db))


def files(i: int) -> tuple[EntryKind, dict[str, Any]]:
    return (EntryKind.FILES, {"created": [f"f{i}.py"], "modified": [], "deleted": [], "moved": []})


def names(entries: Sequence[WorklogEntry]) -> list[str]:
    return [e.payload["created"][0] if e.kind is EntryKind.FILES else e.kind.value for e in entries]


async def drain(writer: EntryWriter) -> None:
    while await writer.flush():
        pass


async def test_entries_made_while_the_store_is_down_are_all_stored_after_it(tmp_path: Path) -> None:
    journal = adapters.FileJournal(tmp_path / "journal")
    async with stores() as store:
        acked: list[WorklogEntry] = []
        writer = EntryWriter(SID, store, acked.extend, journal=journal)
        await writer.add([files(0)], carry_on_failure=True)
        store.down = True
        with pytest.raises(engine.WorklogError):
            await writer.add([files(1)], carry_on_failure=True)
        for i in range(2, 16):
            # carried at once (written ahead to the journal), the store is not asked meanwhile
            assert await writer.add([files(i)], carry_on_failure=True) == []
        assert writer.carried == 15 and writer.journaled == 15
        with pytest.raises(engine.WorklogError):
            await writer.flush()  # still down: everything stays
        assert writer.carried == 15
        # the journal holds every carried entry, owner-only
        path = journal.path(SID)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert [e.seq for e in await journal.read(SID)] == list(range(2, 17))
        store.down = False
        await drain(writer)
        stored = await store.real.entries(SID)
        assert [e.seq for e in stored] == list(range(1, 17))
        assert names(stored) == [f"f{i}.py" for i in range(16)]
        assert [e.seq for e in acked] == list(range(1, 17))
        assert writer.carried == 0 and not path.exists()


async def test_a_write_that_committed_before_failing_is_not_written_twice() -> None:
    async with stores() as store:
        acked: list[WorklogEntry] = []
        writer = EntryWriter(
            SID, store, acked.extend, journal=engine.testing.InMemoryEntryJournal()
        )
        store.commit_then_fail = 1
        with pytest.raises(engine.WorklogError):
            await writer.add([files(1), files(2)], carry_on_failure=True)
        assert writer.carried == 2
        await writer.add([files(3)], carry_on_failure=True)
        await drain(writer)
        stored = await store.real.entries(SID)
        assert [e.seq for e in stored] == [1, 2, 3]
        assert names(stored) == ["f1.py", "f2.py", "f3.py"]
        assert [e.seq for e in acked] == [1, 2, 3]  # each acknowledged once


async def test_a_seq_someone_else_took_moves_the_carried_entries_after_it() -> None:
    async with stores() as store:
        journal = engine.testing.InMemoryEntryJournal()
        writer = EntryWriter(SID, store, lambda _: None, journal=journal)
        await writer.add([files(1)], carry_on_failure=True)
        # another writer stores seq 2 and 3 for this session
        other = [WorklogEntry(SID, s, EntryKind.NOTE, 1.0, {"text": f"other {s}"}) for s in (2, 3)]
        await store.real.append(other)
        with pytest.raises(engine.WorklogConflictError):
            await writer.add([files(2)], carry_on_failure=True)
        await writer.add([files(3)], carry_on_failure=True)
        await drain(writer)
        stored = await store.real.entries(SID)
        assert [e.seq for e in stored] == [1, 2, 3, 4, 5]
        assert names(stored) == ["f1.py", "note", "note", "f2.py", "f3.py"]
        assert await journal.sessions() == []


async def test_past_the_memory_bound_entries_live_in_the_journal_alone(tmp_path: Path) -> None:
    journal = adapters.FileJournal(tmp_path / "journal")
    async with stores() as store:
        writer = EntryWriter(SID, store, lambda _: None, journal=journal, max_backlog=5)
        store.down = True
        for i in range(1, 1201):
            try:
                await writer.add([files(i)], carry_on_failure=True)
            except engine.WorklogError:
                assert i == 1
        assert writer.carried == 1200 and len(writer._memory) <= 5
        assert len(await journal.read(SID)) == 1200
        store.down = False
        left = await writer.flush()
        assert 0 < left < 1200  # one bounded chunk per flush
        await drain(writer)
        stored = await store.real.entries(SID)
        assert [e.seq for e in stored] == list(range(1, 1201))
        assert names(stored) == [f"f{i}.py" for i in range(1, 1201)]
        assert await journal.sessions() == []


async def test_a_note_refused_is_dropped_and_said_so_and_later_seqs_stay_contiguous() -> None:
    async with stores() as store:
        writer = EntryWriter(
            SID, store, lambda _: None, journal=engine.testing.InMemoryEntryJournal()
        )
        store.down = True
        with pytest.raises(engine.WorklogError):
            await writer.add([files(1)], carry_on_failure=True)
        with pytest.raises(engine.WorklogError):
            await writer.add(
                [(EntryKind.NOTE, {"text": "lost, and said so"})], carry_on_failure=False
            )
        store.down = False
        [note] = await writer.add([(EntryKind.NOTE, {"text": "kept"})], carry_on_failure=False)
        assert note.seq == 2
        stored = await store.real.entries(SID)
        assert [(e.seq, e.kind) for e in stored] == [(1, EntryKind.FILES), (2, EntryKind.NOTE)]


async def test_a_session_stopped_during_an_outage_leaves_a_journal_that_a_replay_writes(
    tmp_path: Path,
) -> None:
    journal = adapters.FileJournal(tmp_path / "journal")
    async with stores() as store:
        writer = EntryWriter(SID, store, lambda _: None, journal=journal)
        await writer.add([files(1)], carry_on_failure=True)
        store.down = True
        with pytest.raises(engine.WorklogError):
            await writer.add([files(2)], carry_on_failure=True)
        with pytest.raises(engine.WorklogError):
            await writer.close(EndReason.SHUTDOWN, None)
        # the process dies here: only the journal remains
        del writer
        report = await replay_journals(journal, store)
        assert report.failed and await journal.sessions() == [SID]
        store.down = False
        report = await replay_journals(journal, store)
        assert report.written == {SID: 2} and not report.failed
        stored = await store.real.entries(SID)
        assert [e.seq for e in stored] == [1, 2, 3]
        assert [e.kind for e in stored][-1] is EntryKind.SESSION_STOP
        assert await journal.sessions() == []


async def test_a_replay_writes_none_twice(tmp_path: Path) -> None:
    journal = adapters.FileJournal(tmp_path / "journal")
    async with stores() as store:
        made = [
            WorklogEntry(SID, s, EntryKind.NOTE, 100.0 + s, {"text": f"n{s}"}) for s in (1, 2, 3, 4)
        ]
        await journal.append(SID, made)
        await store.real.append(made[:2])  # acknowledged before the crash, journal not yet removed
        # a torn last line (a crash mid-append) is ignored
        path = journal.path(SID)
        path.write_bytes(path.read_bytes() + b'{"seq": 5, "kind": "no')
        report = await replay_journals(journal, store)
        assert report.written == {SID: 2} and report.already == {SID: 2}
        stored = await store.real.entries(SID)
        assert [(e.seq, e.payload["text"]) for e in stored] == [(s, f"n{s}") for s in (1, 2, 3, 4)]
        assert await replay_journals(journal, store) == type(report)()


async def test_journals_refuse_session_ids_that_are_not_file_names(tmp_path: Path) -> None:
    journal = adapters.FileJournal(tmp_path / "journal")
    for bad in ("../x", "a/b", "", ".hidden", "x" * 200):
        with pytest.raises(engine.InvalidArgumentError):
            await journal.append(bad, [])
    assert not (tmp_path / "x").exists()
    assert os.listdir(tmp_path) == []


async def test_a_session_stopped_during_an_outage_is_replayed_by_the_running_scribe(
    autojump_clock: trio.testing.MockClock,
) -> None:
    repo = engine.testing.FakeGit("/memory/work")
    await repo.commit("initial", allow_empty=True)
    db = engine.testing.InMemoryDatabase()
    store = OutageStore(engine.testing.InMemoryWorklogStore(db))
    journal = engine.testing.InMemoryEntryJournal()
    watchers = engine.testing.FakeWatchers()
    async with (
        engine.open_engine(engine.EngineConfig(shutdown_grace=2.0)) as eng,
        engine.testing.open_in_memory_session_store(db) as registry,
        engine.open_scribe(
            eng,
            registry=registry,
            store=store,  # type: ignore[arg-type]
            open_repo=repo.open_at,
            open_fs=lambda root: repo.worktree,
            open_watcher=watchers,
            journal=journal,
        ) as scribe,
    ):
        rec = await scribe.start(repo.root)
        watcher = await watchers.wait_watching(repo.root)
        store.down = True
        repo.write_file("down.py", "x\n")
        watcher.feed_nowait(
            engine.ChangeBatch((engine.Change(engine.ChangeKind.CREATED, "down.py"),))
        )
        while not journal._journals:  # noqa: ASYNC110 - written ahead by the watcher's task
            await trio.sleep(0.01)
        await scribe.stop(rec.id)  # the stop entry cannot be stored either: it joins the journal
        assert [e.kind for e in await journal.read(rec.id)] == [
            EntryKind.FILES,
            EntryKind.SESSION_STOP,
        ]
        store.down = False
        while await journal.sessions():  # noqa: ASYNC110 - the replayer retries with backoff
            await trio.sleep(0.5)
        stored = await store.real.entries(rec.id)
    assert [e.seq for e in stored] == [1, 2, 3]
    assert [e.kind for e in stored] == [
        EntryKind.SESSION_START,
        EntryKind.FILES,
        EntryKind.SESSION_STOP,
    ]


class HeldAnswerStore(OutageStore):
    """The first ``entries`` call reads the store, then holds its answer until ``release`` is set
    (``inside`` says it is held): a replay that read the store just before another one wrote."""

    def __init__(self, real: engine.testing.InMemoryWorklogStore) -> None:
        super().__init__(real)
        self.inside, self.release = trio.Event(), trio.Event()

    async def entries(self, session_id: str, **kw: Any) -> list[WorklogEntry]:
        answer = await super().entries(session_id, **kw)
        if not self.inside.is_set():
            self.inside.set()
            await self.release.wait()
        return answer


async def test_two_replays_at_once_write_a_journal_once() -> None:
    # The daemon replays after marking a dead daemon's sessions orphaned while the replayer's own
    # retry (its first try at start was refused: the sessions were still the dead daemon's) may be
    # under way: without one replay at a time the second wrote every entry again after the first's.
    db = engine.testing.InMemoryDatabase()
    journal = engine.testing.InMemoryEntryJournal()
    made = [WorklogEntry(SID, s, EntryKind.NOTE, 100.0 + s, {"text": f"n{s}"}) for s in (1, 2, 3)]
    await journal.append(SID, made)
    async with engine.testing.open_in_memory_session_store(db) as reg:
        await reg.register(engine.SessionRecord(id=SID, name=SID, state="active"))
        store = HeldAnswerStore(engine.testing.InMemoryWorklogStore(db))
        replayer = JournalReplayer(journal, store, lambda: (), lambda *_: None)  # type: ignore[arg-type]
        reports: list[ReplayReport] = []
        async with trio.open_nursery() as nursery:

            async def replay() -> None:
                reports.append(await replayer.replay())

            nursery.start_soon(replay)
            await store.inside.wait()  # the first replay has read the store and is held
            nursery.start_soon(replay)
            await trio.testing.wait_all_tasks_blocked()  # the second runs as far as it may
            store.release.set()
        stored = await store.real.entries(SID)
    assert [(e.seq, e.payload["text"]) for e in stored] == [(1, "n1"), (2, "n2"), (3, "n3")]
    assert sorted(r.written.get(SID, 0) for r in reports) == [0, 3]
    assert await journal.sessions() == []
