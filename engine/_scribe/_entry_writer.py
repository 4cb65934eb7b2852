"""One session's worklog writer: entries numbered and stored in order under one lock, entries of a failed
write carried to the next one, and the stop entry as the last."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, final

import trio

from .._core._errors import SessionClosedError
from .._ports._worklog_records import EndReason, EntryKind, WorklogEntry
from .._ports._worklog_store import WorklogStore

__all__ = ["WRITE_TIMEOUT", "EntryWriter"]

#: The longest a durable write may take before it counts as failed.
WRITE_TIMEOUT: Final = 30.0

_Item = tuple[EntryKind, Mapping[str, Any], float]


@final
class EntryWriter:
    """Stores one session's entries in order. Made by its capture; ``on_stored`` is called with the
    entries of each write once the store has committed them."""

    def __init__(
        self,
        session_id: str,
        store: WorklogStore,
        on_stored: Callable[[list[WorklogEntry]], None],
        first_seq: int = 0,
    ) -> None:
        self._session_id = session_id
        self._store = store
        self._on_stored = on_stored
        self.seq = first_seq
        self._seq_uncertain = False
        self._lock = trio.Lock()
        self._carry: list[_Item] = []
        self._closed = False

    @property
    def carried(self) -> int:
        """Entries waiting to be stored again after a failed write."""
        return len(self._carry)

    async def add(
        self, items: Sequence[tuple[EntryKind, Mapping[str, Any]]], *, carry_on_failure: bool
    ) -> list[WorklogEntry]:
        """Store ``items`` as the next entries (after any carried over from a failed write) and return
        them once durable; ``carry_on_failure`` keeps them for the next write when this one fails.

        Raises:
            SessionClosedError: the stop entry was written.
            WorklogError, DatabaseError: the write failed.

        Cancellation: the write itself is shielded (bounded by 30 s), so an entry is either stored and
        acknowledged or not stored; cancellation is delivered after.
        """
        now = round(time.time(), 6)
        new: list[_Item] = [(k, dict(p), now) for k, p in items]
        async with self._lock:
            if self._closed:
                raise SessionClosedError(f"session {self._session_id} is stopped")
            with trio.CancelScope(shield=True):
                stored = await self._write([*self._carry, *new], len(self._carry), carry_on_failure)
            await trio.lowlevel.checkpoint_if_cancelled()
            return stored

    async def close(self, reason: EndReason, detail: str | None) -> WorklogEntry | None:
        """Write the stop entry (after anything still carried) and refuse entries after it.

        Cancellation: shielded like :meth:`add`.
        """
        async with self._lock:
            if self._closed:
                return None
            stop: _Item = (
                EntryKind.SESSION_STOP,
                {"reason": reason.value, "detail": detail},
                round(time.time(), 6),
            )
            with trio.CancelScope(shield=True):
                try:
                    stored = await self._write([*self._carry, stop], len(self._carry), False)
                finally:
                    self._closed = True
            return stored[-1] if stored else None

    async def _write(self, todo: list[_Item], carried: int, carry: bool) -> list[WorklogEntry]:
        if not todo:
            return []
        with trio.fail_after(WRITE_TIMEOUT):
            if self._seq_uncertain:
                stored_seq = await self._store.last_seq(self._session_id)
                if stored_seq > self.seq:
                    # The write that "failed" had committed: those carried entries are stored.
                    done = stored_seq - self.seq
                    self.seq = stored_seq
                    todo = todo[done:]
                    carried = max(0, carried - done)
                self._seq_uncertain = False
            entries = [
                WorklogEntry(self._session_id, self.seq + i + 1, kind, at, payload)
                for i, (kind, payload, at) in enumerate(todo)
            ]
            try:
                await self._store.append(entries)
            except BaseException:
                self._seq_uncertain = True
                self._carry = todo if carry else todo[:carried]
                raise
        self._carry = []
        self.seq += len(entries)
        self._on_stored(entries)
        return entries
