"""Reconciling entries not yet acknowledged with what the store holds, and replaying journals.

A write that failed may have committed (the connection broke after the commit), and a seq may have
been taken by another writer: :func:`reconcile` compares what the store holds past the last
acknowledged seq with the entries waiting, says which of them are stored already (ours) and how far
the rest must move (after someone else's). :func:`replay_journals` writes every journal's entries that
the store does not hold yet, in order, then removes the journal: what a crashed process carried.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from .._core._errors import ScribeError
from .._ports._entry_journal import EntryJournal
from .._ports._session_store import StoreNotFoundError
from .._ports._worklog_records import WorklogEntry
from .._ports._worklog_store import WorklogStore

__all__ = ["REPLAY_CHUNK", "Reconciled", "ReplayReport", "reconcile", "renumber", "replay_journals"]

#: The most entries one store write of a replay or a drain holds.
REPLAY_CHUNK: Final = 500
#: created_at is stored with microsecond precision; read back through a float it may differ slightly.
_TIME_TOLERANCE: Final = 1e-3


def _canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def same_entry(a: WorklogEntry, b: WorklogEntry) -> bool:
    """Whether two entries record the same thing (session, seq, kind, time and payload)."""
    return (
        a.session_id == b.session_id
        and a.seq == b.seq
        and a.kind is b.kind
        and abs(a.created_at - b.created_at) <= _TIME_TOLERANCE
        and _canonical(a.payload) == _canonical(b.payload)
    )


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What the store held past the last acknowledged seq.

    Attributes:
        stored: how many of the waiting entries (from the first) it holds already.
        shift: how far the remaining entries' seqs must move (after entries someone else wrote).
    """

    stored: int
    shift: int


def reconcile(held: Sequence[WorklogEntry], waiting: Sequence[WorklogEntry]) -> Reconciled:
    """Compare ``held`` (the store's entries past the last acknowledged seq, ascending) with
    ``waiting`` (ours, numbered from the same point): ours that the store holds, and the move the rest
    needs so that they follow the store's last entry."""
    ours = 0
    for s, w in zip(held, waiting, strict=False):
        if not same_entry(s, w):
            break
        ours += 1
    if ours == len(held):
        return Reconciled(ours, 0)
    # Someone else wrote past that point: ours (not stored) go after the store's last entry.
    first_left = waiting[ours].seq if ours < len(waiting) else held[-1].seq + 1
    return Reconciled(ours, max(0, held[-1].seq + 1 - first_left))


def renumber(entries: Sequence[WorklogEntry], shift: int) -> list[WorklogEntry]:
    """``entries`` with their seqs moved by ``shift``."""
    if not shift:
        return list(entries)
    return [dataclasses.replace(e, seq=e.seq + shift) for e in entries]


@dataclass(slots=True)
class ReplayReport:
    """What :func:`replay_journals` did.

    Attributes:
        written: entries written to the store, per session.
        already: entries the store held already (a write acknowledged too late), per session.
        failed: sessions whose journal stays (the error), for a later replay.
    """

    written: dict[str, int] = field(default_factory=dict)
    already: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


async def replay_journals(
    journal: EntryJournal,
    store: WorklogStore,
    *,
    skip: frozenset[str] = frozenset(),
    timeout: float = 30.0,
) -> ReplayReport:
    """Write every journal's entries the store does not hold yet, in order and with contiguous seqs,
    then remove the journal. A session the store does not know, or a write that fails, leaves its
    journal for a later replay (see the report).

    Args:
        journal: the journals.
        store: where the entries go.
        skip: sessions captured live (their writer owns their journal).
        timeout: the longest one store or journal call may take.

    Cancellation: between writes; a write that returned is acknowledged by the store, and the journal
    still holds it until it is removed (a later replay finds it stored and does not write it twice).
    """
    report = ReplayReport()
    for sid in await journal.sessions():
        if sid in skip:
            continue
        try:
            with trio.fail_after(timeout * 4):
                written, already = await _replay_one(journal, store, sid, timeout)
        except StoreNotFoundError as exc:
            report.failed[sid] = f"the session is not registered: {exc}"
        except (ScribeError, trio.TooSlowError) as exc:
            report.failed[sid] = f"{type(exc).__name__}: {exc}"
        else:
            report.written[sid], report.already[sid] = written, already
    return report


async def _replay_one(
    journal: EntryJournal, store: WorklogStore, sid: str, timeout: float
) -> tuple[int, int]:
    with trio.fail_after(timeout):
        entries = await journal.read(sid)
    if not entries:
        await journal.remove(sid)
        return 0, 0
    base = entries[0].seq - 1
    with trio.fail_after(timeout):
        held = await store.entries(sid, after_seq=base)
        # Nothing held past the base: no gap below what the store holds either.
        shift = (await store.last_seq(sid)) - base if not held else 0
    outcome = reconcile(held, entries)
    if held:
        shift = outcome.shift
    todo = renumber(entries[outcome.stored :], shift)
    for start in range(0, len(todo), REPLAY_CHUNK):
        with trio.fail_after(timeout):
            await store.append(todo[start : start + REPLAY_CHUNK])
    with trio.fail_after(timeout):
        await journal.remove(sid)
    return len(todo), outcome.stored
