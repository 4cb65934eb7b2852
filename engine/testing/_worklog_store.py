"""The worklog store in memory: :class:`engine.WorklogStore` over an :class:`InMemoryDatabase`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, final

import trio

from .._ports._session_store import StoreNotFoundError
from .._ports._summary_record import Summary
from .._ports._validation import check_optional_limit
from .._ports._worklog_records import WorklogEntry
from .._ports._worklog_store import SummaryConflictError, WorklogConflictError, WorklogStore
from ._database import InMemoryDatabase

__all__ = ["InMemoryWorklogStore"]


def _stored_entry(e: WorklogEntry) -> WorklogEntry:
    """The entry as it reads back from storage: its payload through JSON (a copy, tuples become
    lists; a payload JSON cannot hold raises ``TypeError`` as the PostgreSQL store does)."""
    return WorklogEntry(
        e.session_id, e.seq, e.kind, e.created_at, json.loads(json.dumps(e.payload))
    )


def _stored_summary(s: Summary) -> Summary:
    return Summary.from_payload(
        s.session_id, s.version, s.created_at, json.loads(json.dumps(s.payload()))
    )


@final
class InMemoryWorklogStore:
    """Worklog entries and summaries in memory (implements :class:`engine.WorklogStore`).

    As over PostgreSQL, an entry or summary needs its session registered in the same database
    (an :func:`open_in_memory_session_store` over ``db``), and an append moves the session's
    ``last_activity`` forward to its newest entry. Holds nothing to close.

    Args:
        db: the rows to use (share it with the session store).
    """

    def __init__(self, db: InMemoryDatabase) -> None:
        self._db = db

    def __repr__(self) -> str:
        return f"<InMemoryWorklogStore on {self._db!r}>"

    async def append(self, entries: Sequence[WorklogEntry]) -> None:
        """Store ``entries`` atomically (all or none); see :meth:`engine.WorklogStore.append`.

        Cancellation: checked before anything is stored; then the append completes.
        """
        await trio.lowlevel.checkpoint()
        seen: set[tuple[str, int]] = set()
        entries = [_stored_entry(e) for e in entries]
        for e in entries:
            if e.session_id not in self._db._sessions:
                raise StoreNotFoundError(e.session_id)
            key = (e.session_id, e.seq)
            if key in seen or e.seq in self._db._worklog.get(e.session_id, {}):
                raise WorklogConflictError(
                    f"worklog entry {e.seq} of session {e.session_id!r} already stored "
                    "(two writers for one session?)"
                )
            seen.add(key)
        for e in entries:
            self._db._worklog.setdefault(e.session_id, {})[e.seq] = e
            record = self._db._sessions[e.session_id]
            if e.created_at > record.last_activity:
                self._db._sessions[e.session_id] = dataclasses.replace(
                    record, last_activity=e.created_at
                )

    async def entries(
        self,
        session_id: str,
        *,
        after_seq: int = 0,
        before_seq: int | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[WorklogEntry]:
        """See :meth:`engine.WorklogStore.entries`. Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        limit = check_optional_limit(limit)
        stored = self._db._worklog.get(session_id, {})
        found = [
            stored[seq]
            for seq in sorted(stored)
            if seq > after_seq and (before_seq is None or seq < before_seq)
        ]
        if limit is None:
            return found
        return found[-limit:] if newest else found[:limit]

    async def last_seq(self, session_id: str) -> int:
        """See :meth:`engine.WorklogStore.last_seq`. Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        return max(self._db._worklog.get(session_id, {}), default=0)

    async def save_summary(self, summary: Summary) -> None:
        """See :meth:`engine.WorklogStore.save_summary`.

        Raises:
            SummaryConflictError: that version is stored already.
            StoreNotFoundError: the session is not registered.

        Cancellation: checked before anything is stored.
        """
        await trio.lowlevel.checkpoint()
        if summary.session_id not in self._db._sessions:
            raise StoreNotFoundError(summary.session_id)
        versions = self._db._summaries.setdefault(summary.session_id, {})
        if summary.version in versions:
            raise SummaryConflictError(
                f"summary {summary.version} of session {summary.session_id!r} is stored already"
            )
        versions[summary.version] = _stored_summary(summary)

    async def latest_summary(self, session_id: str) -> Summary | None:
        """See :meth:`engine.WorklogStore.latest_summary`. Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        versions = self._db._summaries.get(session_id, {})
        return versions[max(versions)] if versions else None

    async def summaries(self, session_id: str) -> list[Summary]:
        """See :meth:`engine.WorklogStore.summaries`. Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        versions = self._db._summaries.get(session_id, {})
        return [versions[v] for v in sorted(versions)]


if TYPE_CHECKING:

    def _conforms(store: InMemoryWorklogStore) -> WorklogStore:
        return store
