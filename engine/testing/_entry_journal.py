"""The entry journal in memory: :class:`engine.EntryJournal` as dicts (a crash of the process loses it,
so it is for tests and for hosts that keep no journal)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import final

import trio

from .._core._errors import InvalidArgumentError
from .._ports._entry_journal import check_journal_session
from .._ports._validation import check_optional_limit
from .._ports._worklog_records import WorklogEntry

__all__ = ["InMemoryEntryJournal"]


def _copy(e: WorklogEntry) -> WorklogEntry:
    """The entry as it reads back from a journal: its payload through JSON."""
    return WorklogEntry(
        e.session_id, e.seq, e.kind, e.created_at, json.loads(json.dumps(e.payload))
    )


@final
class InMemoryEntryJournal:
    """Per-session journals in memory (implements :class:`engine.EntryJournal`). Holds nothing to
    close. ``appends`` counts the calls to :meth:`append`."""

    def __init__(self) -> None:
        self._journals: dict[str, list[WorklogEntry]] = {}
        self.appends = 0

    def __repr__(self) -> str:
        return f"<InMemoryEntryJournal of {len(self._journals)} session(s)>"

    async def append(self, session_id: str, entries: Sequence[WorklogEntry]) -> None:
        """See :meth:`engine.EntryJournal.append`. Cancellation: checked before anything is kept."""
        check_journal_session(session_id)
        _same_session(session_id, entries)
        await trio.lowlevel.checkpoint()
        copies = [_copy(e) for e in entries]
        self.appends += 1
        if copies:
            self._journals.setdefault(session_id, []).extend(copies)

    async def read(
        self, session_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[WorklogEntry]:
        """See :meth:`engine.EntryJournal.read`."""
        check_journal_session(session_id)
        limit = check_optional_limit(limit)
        await trio.lowlevel.checkpoint()
        latest: dict[int, WorklogEntry] = {}
        for e in self._journals.get(session_id, []):
            latest[e.seq] = e
        out = [latest[s] for s in sorted(latest) if s > after_seq]
        return out if limit is None else out[:limit]

    async def replace(self, session_id: str, entries: Sequence[WorklogEntry]) -> None:
        """See :meth:`engine.EntryJournal.replace`."""
        check_journal_session(session_id)
        _same_session(session_id, entries)
        await trio.lowlevel.checkpoint()
        if entries:
            self._journals[session_id] = [_copy(e) for e in entries]
        else:
            self._journals.pop(session_id, None)

    async def remove(self, session_id: str) -> None:
        """See :meth:`engine.EntryJournal.remove`."""
        check_journal_session(session_id)
        await trio.lowlevel.checkpoint()
        self._journals.pop(session_id, None)

    async def sessions(self) -> list[str]:
        """See :meth:`engine.EntryJournal.sessions`."""
        await trio.lowlevel.checkpoint()
        return sorted(self._journals)


def _same_session(session_id: str, entries: Sequence[WorklogEntry]) -> None:
    for e in entries:
        if e.session_id != session_id:
            raise InvalidArgumentError(
                f"entry of session {e.session_id!r} in the journal of {session_id!r}"
            )
