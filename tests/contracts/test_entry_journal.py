"""The entry journal's contract, held by the file journal and the in-memory one alike."""

from __future__ import annotations

from pathlib import Path

import pytest

import adapters
import engine
import engine.testing
from engine._ports._worklog_records import EntryKind, WorklogEntry


@pytest.fixture(params=["memory", "disk"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> engine.EntryJournal:
    if request.param == "memory":
        return engine.testing.InMemoryEntryJournal()
    return adapters.FileJournal(tmp_path / "journal")


def note(sid: str, seq: int, text: str) -> WorklogEntry:
    return WorklogEntry(sid, seq, EntryKind.NOTE, 1000.0 + seq, {"text": text, "n": [seq]})


async def test_appended_entries_read_back_in_seq_order(journal: engine.EntryJournal) -> None:
    assert isinstance(journal, engine.EntryJournal)
    assert await journal.read("s1") == [] and await journal.sessions() == []
    await journal.append("s1", [note("s1", 1, "a"), note("s1", 2, "b")])
    await journal.append("s1", [note("s1", 3, "c")])
    await journal.append("s2", [note("s2", 1, "x")])
    got = await journal.read("s1")
    assert [(e.seq, e.payload["text"], e.payload["n"]) for e in got] == [
        (1, "a", [1]),
        (2, "b", [2]),
        (3, "c", [3]),
    ]
    assert got[0] == note("s1", 1, "a")
    assert [e.seq for e in await journal.read("s1", after_seq=1, limit=1)] == [2]
    assert await journal.sessions() == ["s1", "s2"]


async def test_a_seq_appended_again_reads_as_the_later_entry(journal: engine.EntryJournal) -> None:
    await journal.append("s", [note("s", 1, "old")])
    await journal.append("s", [note("s", 1, "new"), note("s", 2, "next")])
    assert [e.payload["text"] for e in await journal.read("s")] == ["new", "next"]


async def test_replace_and_remove(journal: engine.EntryJournal) -> None:
    await journal.append("s", [note("s", 1, "a"), note("s", 2, "b")])
    await journal.replace("s", [note("s", 5, "moved")])
    assert [e.seq for e in await journal.read("s")] == [5]
    await journal.replace("s", [])
    assert await journal.sessions() == []
    await journal.append("s", [note("s", 1, "a")])
    await journal.remove("s")
    await journal.remove("s")  # nothing to remove: no error
    assert await journal.read("s") == [] and await journal.sessions() == []


async def test_bad_session_ids_and_foreign_entries_are_refused(
    journal: engine.EntryJournal,
) -> None:
    for bad in ("../x", "a/b", "", ".x", "x" * 129):
        with pytest.raises(engine.InvalidArgumentError):
            await journal.append(bad, [])
    with pytest.raises(engine.InvalidArgumentError):
        await journal.append("s", [note("other", 1, "a")])
    assert await journal.sessions() == []
