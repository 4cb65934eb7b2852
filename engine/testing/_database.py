"""The rows in-memory stores share, as the stores of one PostgreSQL database share its tables."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import final

from .._ports._session_store import SessionRecord
from .._ports._summary_record import Summary
from .._ports._worklog_records import WorklogEntry

__all__ = ["InMemoryDatabase"]


@final
class InMemoryDatabase:
    """Sessions, engine owners, worklog entries and summaries held in memory.

    Give one to :func:`open_in_memory_session_store` and :class:`InMemoryWorklogStore` so that, as
    over one PostgreSQL database, a worklog entry needs a registered session and purging a session
    deletes its worklog. Several session stores over one database act as several engine processes:
    each is a live owner while its ``open_*`` block runs.

    Args:
        name: shown in ``repr`` (tests that use several databases tell them apart).
        clock: the database's "now" in seconds since the epoch (default :func:`time.time`); a test
            that moves it forward ages every row at once.
    """

    def __init__(self, name: str = "memory", *, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.clock = clock
        self._sessions: dict[str, SessionRecord] = {}
        self._live_owners: set[str] = set()
        self._worklog: dict[str, dict[int, WorklogEntry]] = {}
        self._summaries: dict[str, dict[int, Summary]] = {}

    def __repr__(self) -> str:
        return f"<InMemoryDatabase {self.name!r}: {len(self._sessions)} sessions>"

    def now(self) -> float:
        """The database clock's current time (microsecond precision, as PostgreSQL stores it)."""
        return round(self.clock(), 6)

    def _forget_session(self, session_id: str) -> None:
        """Delete a session with its worklog and summaries; its children lose their parent."""
        del self._sessions[session_id]
        self._worklog.pop(session_id, None)
        self._summaries.pop(session_id, None)
        for sid, rec in self._sessions.items():
            if rec.parent_id == session_id:
                self._sessions[sid] = dataclasses.replace(rec, parent_id=None)
