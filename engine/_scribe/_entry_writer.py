"""One session's worklog writer: entries numbered and stored in order under one lock; across a store
failure they are carried (the first ``max_backlog`` in memory, every one written ahead to the journal)
and written by :meth:`EntryWriter.flush` once the store is back, with contiguous seqs, none twice.

Numbering happens once, when an entry is made. While anything is carried, new entries join the
backlog (and the journal) without trying the store: only the flusher retries, with backoff. After a
failed write, whether it committed is unknown: the next attempt first reads what the store holds past
the last acknowledged seq (:func:`~._entry_reconcile.reconcile`), inside the same failure handling,
so an outage that lasts keeps carrying instead of dropping.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, final

import trio

from .._core._errors import SessionClosedError
from .._ports._entry_journal import EntryJournal, JournalError
from .._ports._worklog_records import EndReason, EntryKind, WorklogEntry, WorklogError
from .._ports._worklog_store import WorklogStore
from ._entry_reconcile import REPLAY_CHUNK, reconcile, renumber

__all__ = ["DEFAULT_MAX_BACKLOG", "WRITE_TIMEOUT", "EntryWriter"]

#: The longest a durable write may take before it counts as failed.
WRITE_TIMEOUT: Final = 30.0
#: Carried entries kept in memory per session; past it they live in the journal only.
DEFAULT_MAX_BACKLOG: Final = 1000


@final
class EntryWriter:
    """Stores one session's entries in order. Made by its capture; ``on_stored`` is called with the
    entries of each write once the store has committed them.

    Args:
        session_id: the session.
        store: the worklog store.
        on_stored: called with each write's entries once committed.
        first_seq: the last seq already stored.
        journal: where carried entries are written ahead (None: memory only, and no bound).
        max_backlog: carried entries kept in memory (with a journal).
        write_timeout: the longest one store call may take.
    """

    def __init__(
        self,
        session_id: str,
        store: WorklogStore,
        on_stored: Callable[[list[WorklogEntry]], None],
        first_seq: int = 0,
        *,
        journal: EntryJournal | None = None,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        write_timeout: float = WRITE_TIMEOUT,
    ) -> None:
        self._session_id = session_id
        self._store = store
        self._on_stored = on_stored
        self._journal = journal
        self._max_backlog = max_backlog
        self._write_timeout = write_timeout
        self.seq = first_seq  # the last seq the store acknowledged
        self._last = first_seq  # the last seq given out
        self._memory: list[WorklogEntry] = []  # carried entries kept here (ascending seq)
        self._journaled = 0  # the highest seq written to the journal (0: no journal)
        self._uncertain = False
        self._lock = trio.Lock()
        self._closed = False
        self.journal_errors = 0
        self.last_journal_error: str | None = None

    @property
    def carried(self) -> int:
        """Entries made but not yet acknowledged by the store (in memory or in the journal)."""
        return self._last - self.seq

    @property
    def journaled(self) -> int:
        """Carried entries the journal holds."""
        return max(0, self._journaled - self.seq)

    async def add(
        self, items: Sequence[tuple[EntryKind, Mapping[str, Any]]], *, carry_on_failure: bool
    ) -> list[WorklogEntry]:
        """Store ``items`` as the next entries and return them once durable in the store.

        With ``carry_on_failure`` (the watcher's entries) they are carried when the write fails, and
        while entries are carried already they join the backlog at once (written ahead to the journal)
        and ``[]`` is returned: :meth:`flush` writes them. Without it (a user's note) everything carried
        is written first, and when that or the note's write fails the note is dropped and the error
        raised.

        Raises:
            SessionClosedError: the stop entry was written.
            WorklogError, DatabaseError: the write failed (carried entries are kept).

        Cancellation: the write itself is shielded (bounded by the write timeout), so an entry is
        either stored and acknowledged, or carried, or (a note) not stored; cancellation is delivered
        after.
        """
        now = round(time.time(), 6)
        async with self._lock:
            if self._closed:
                raise SessionClosedError(f"session {self._session_id} is stopped")
            with trio.CancelScope(shield=True):
                stored = await self._add(items, now, carry_on_failure)
            await trio.lowlevel.checkpoint_if_cancelled()
            return stored

    async def _add(
        self, items: Sequence[tuple[EntryKind, Mapping[str, Any]]], now: float, carry: bool
    ) -> list[WorklogEntry]:
        if not items:
            return []
        if not carry:
            await self._drain()  # everything carried goes first; a failure raises
            new = self._number(items, now)
            try:
                await self._write(new)
            except BaseException:
                self._last -= len(new)  # the note is not carried: the caller is told
                raise
            return new
        had_backlog = self.carried > 0
        new = self._number(items, now)
        if had_backlog:
            await self._carry(new)
            return []
        try:
            await self._write(new)
        except BaseException:
            await self._carry(new)
            raise
        return new

    async def flush(self) -> int:
        """Write one chunk of what is carried (at most 500 entries); return how many remain.

        Raises:
            WorklogError, DatabaseError: the write failed (everything stays carried).

        Cancellation: shielded like :meth:`add`.
        """
        async with self._lock:
            with trio.CancelScope(shield=True):
                if self.carried:
                    await self._write_chunk()
                if not self.carried:
                    await self._forget_journal()
            await trio.lowlevel.checkpoint_if_cancelled()
            return self.carried

    async def close(self, reason: EndReason, detail: str | None) -> WorklogEntry | None:
        """Write the stop entry (after everything carried) and refuse entries after it. When the store
        fails, the stop entry is carried with the rest into the journal (replayed on a later start)
        and the error raised.

        Cancellation: shielded like :meth:`add`.
        """
        async with self._lock:
            if self._closed:
                return None
            self._closed = True
            payload = {"reason": reason.value, "detail": detail}
            with trio.CancelScope(shield=True):
                had_backlog = self.carried > 0
                [stop] = self._number([(EntryKind.SESSION_STOP, payload)], round(time.time(), 6))
                if had_backlog:
                    await self._carry([stop])
                    await self._drain()
                else:
                    try:
                        await self._write([stop])
                    except BaseException:
                        await self._carry([stop])
                        raise
            return stop

    # -- internals -------------------------------------------------------------------------------

    def _number(
        self, items: Sequence[tuple[EntryKind, Mapping[str, Any]]], at: float
    ) -> list[WorklogEntry]:
        first = self._last + 1
        out = [
            WorklogEntry(self._session_id, first + i, kind, at, dict(payload))
            for i, (kind, payload) in enumerate(items)
        ]
        self._last += len(out)
        return out

    async def _carry(self, new: list[WorklogEntry]) -> None:
        """Add ``new`` (just numbered) to the backlog, in memory while it has room and no earlier
        entry lives in the journal alone, and write everything carried ahead to the journal."""
        journal_only = self.carried - len(new) - len(self._memory)
        room = self._journal is None or len(self._memory) + len(new) <= self._max_backlog
        if journal_only == 0 and room:
            self._memory.extend(new)
            await self._write_ahead([])
        elif not await self._write_ahead(new):
            self._memory.extend(new)  # the journal refused: keep them here, past the bound

    async def _write_ahead(self, extra: list[WorklogEntry]) -> bool:
        """Write to the journal every carried entry in memory it lacks, then ``extra``; False when
        the journal failed (counted; the entries stay where they were)."""
        if self._journal is None:
            return False
        todo = [e for e in self._memory if e.seq > self._journaled] + extra
        if not todo:
            return True
        try:
            with trio.fail_after(self._write_timeout):
                await self._journal.append(self._session_id, todo)
        except (JournalError, trio.TooSlowError) as exc:
            self.journal_errors += 1
            self.last_journal_error = f"{type(exc).__name__}: {exc}"
            return False
        self._journaled = max(self._journaled, todo[-1].seq)
        return True

    async def _drain(self) -> None:
        while self.carried:
            await self._write_chunk()
        await self._forget_journal()

    async def _forget_journal(self) -> None:
        if self._journaled and self._journal is not None:
            try:
                await self._journal.remove(self._session_id)
            except JournalError as exc:
                # Harmless: a later replay finds these entries stored and writes none twice.
                self.journal_errors += 1
                self.last_journal_error = f"{type(exc).__name__}: {exc}"
            self._journaled = 0

    async def _next_chunk(self) -> list[WorklogEntry]:
        """The next carried entries in seq order (from memory, or read back from the journal)."""
        want = self.seq + 1
        if self._memory and self._memory[0].seq == want:
            chunk = [self._memory[0]]
            for e in self._memory[1:REPLAY_CHUNK]:
                if e.seq != chunk[-1].seq + 1:
                    break
                chunk.append(e)
            return chunk
        if self._journal is None:
            raise WorklogError(f"carried entries from seq {want} are missing")
        limit = REPLAY_CHUNK
        if self._memory:
            limit = min(limit, self._memory[0].seq - want)
        read = await self._journal.read(self._session_id, after_seq=self.seq, limit=limit)
        if not read or read[0].seq != want:
            raise JournalError(
                f"the journal of session {self._session_id} lost entries from {want}"
            )
        return read

    async def _write_chunk(self) -> None:
        try:
            with trio.fail_after(self._write_timeout):
                if self._uncertain:
                    await self._reconcile()
                if not self.carried:
                    return
                chunk = await self._next_chunk()
                await self._append(chunk)
        except trio.TooSlowError as exc:
            self._uncertain = True
            await self._write_ahead([])
            raise WorklogError(
                f"the worklog store took over {self._write_timeout:g} s to write"
            ) from exc
        except BaseException:
            await self._write_ahead([])
            raise
        self._acknowledged(chunk)

    async def _write(self, new: list[WorklogEntry]) -> None:
        """Write ``new``, the only entries not acknowledged (nothing is carried besides them)."""
        try:
            with trio.fail_after(self._write_timeout):
                if self._uncertain:
                    await self._reconcile_direct(new)
                await self._append(new)
        except trio.TooSlowError as exc:
            self._uncertain = True
            raise WorklogError(
                f"the worklog store took over {self._write_timeout:g} s to write"
            ) from exc
        self._acknowledged(new)

    async def _append(self, entries: list[WorklogEntry]) -> None:
        try:
            await self._store.append(entries)
        except BaseException:
            # It may have committed (a connection lost after the commit), or a seq may be taken:
            # the next attempt reads what the store holds first.
            self._uncertain = True
            raise

    def _acknowledged(self, entries: list[WorklogEntry]) -> None:
        if not entries:
            return
        self.seq = entries[-1].seq
        self._memory = [e for e in self._memory if e.seq > self.seq]
        self._on_stored(entries)

    async def _reconcile_direct(self, new: list[WorklogEntry]) -> None:
        # Nothing was carried when ``new`` was made: only a note dropped after a write whose fate was
        # unknown can stand between the last acknowledged seq and ``new``.
        held = await self._store.entries(self._session_id, after_seq=self.seq)
        self._uncertain = False
        if held:
            shift = held[-1].seq - self.seq
            self.seq = held[-1].seq
            self._last += shift
            new[:] = renumber(new, shift)

    async def _reconcile(self) -> None:
        """After a write whose fate is unknown: acknowledge the carried entries the store holds and
        move the rest after entries someone else wrote."""
        held = await self._store.entries(self._session_id, after_seq=self.seq)
        if not held:
            self._uncertain = False
            return
        waiting = await self._waiting(len(held) + 1)
        outcome = reconcile(held, waiting)
        self._acknowledged(waiting[: outcome.stored])
        if outcome.shift:
            await self._shift_backlog(outcome.shift, held[-1].seq)
        self._uncertain = False

    async def _waiting(self, count: int) -> list[WorklogEntry]:
        out: list[WorklogEntry] = []
        while len(out) < count and self.seq + len(out) < self._last:
            after = self.seq + len(out)
            mem = [e for e in self._memory if e.seq > after][: count - len(out)]
            if mem and mem[0].seq == after + 1:
                out.extend(mem)
                continue
            if self._journal is None:
                break
            read = await self._journal.read(
                self._session_id, after_seq=after, limit=count - len(out)
            )
            if not read:
                break
            out.extend(read)
        return out

    async def _shift_backlog(self, shift: int, held_last: int) -> None:
        """Renumber every carried entry by ``shift`` (in memory and in the journal) so that they
        follow ``held_last``, the store's last entry."""
        backlog = await self._waiting(self.carried)
        moved = renumber(backlog, shift)
        in_memory = {e.seq for e in self._memory}
        self._memory = [m for m, old in zip(moved, backlog, strict=True) if old.seq in in_memory]
        if self._journal is not None and self._journaled:
            try:
                await self._journal.replace(self._session_id, moved)
            except JournalError as exc:
                # The old numbering must not be replayed: keep every entry here instead.
                self.journal_errors += 1
                self.last_journal_error = f"{type(exc).__name__}: {exc}"
                self._memory = moved
                self._journaled = 0
                with contextlib.suppress(JournalError):
                    await self._journal.remove(self._session_id)
            else:
                self._journaled = moved[-1].seq if moved else 0
        self.seq = held_last
        self._last += shift
