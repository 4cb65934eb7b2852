"""Priority admission: one gate that hands out scarce slots by (effective priority, arrival).

One concept: the waiter heap, aging, per-owner quotas and queue limits, cancellation of waiters and the
dispatch that grants freed slots keep one invariant together (a slot is never lost or given twice), so
they stay in one module.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, final

import outcome
import trio

from ._errors import AdmissionQueueFullError, InvalidArgumentError, ReentryError
from ._latency import Latencies, LatencyHistogram
from ._priority import Priority, coerce_priority

__all__ = ["LimiterStatistics", "PriorityLimiter"]

_WAITING: Final = 0
_GRANTED: Final = 1
_CANCELLED: Final = 2


@dataclass(frozen=True, slots=True)
class LimiterStatistics:
    """A snapshot of a :class:`PriorityLimiter`.

    Attributes:
        name: the limiter's name.
        capacity: how many slots exist.
        borrowed: how many slots are held now.
        waiting: how many tasks wait for a slot (including those held back by their owner's quota).
        waiting_by_priority: ``waiting`` split by base priority name.
        held_back: waiters whose owner is at its quota.
        owners: how many distinct owners hold slots.
        granted_total: slots handed out since creation.
        cancelled_total: waiters cancelled before they got a slot.
        rejected_total: acquisitions refused because an owner's queue was full.
    """

    name: str
    capacity: int
    borrowed: int
    waiting: int
    waiting_by_priority: dict[str, int] = field(default_factory=dict)
    held_back: int = 0
    owners: int = 0
    granted_total: int = 0
    cancelled_total: int = 0
    rejected_total: int = 0


class _Waiter:
    __slots__ = ("key", "owner", "priority", "quota", "seq", "state", "task")

    def __init__(
        self,
        key: float,
        seq: int,
        priority: Priority,
        owner: Hashable | None,
        quota: int | None,
        task: trio.lowlevel.Task,
    ) -> None:
        self.key = key
        self.seq = seq
        self.priority = priority
        self.owner = owner
        self.quota = quota
        self.task = task
        self.state = _WAITING


_Entry = tuple[float, int, _Waiter]


@final
class PriorityLimiter:
    """A capacity limiter that admits waiters by effective priority, with aging and per-owner quotas.

    Waiters are served in order of ``(arrival + priority * aging_interval, arrival)``: a HIGH waiter goes
    before a LOW one that arrived at the same time, but a LOW waiter that has waited ``2 * aging_interval``
    is no longer overtaken by anyone who arrives later. So low priority is delayed, never starved: once a
    waiter has waited :meth:`aging_bound` seconds, only the waiters already queued ahead of it can go first.
    With ``aging_interval=None`` the order is strict priority, then arrival.

    An owner (usually a session) may be given a quota: it never holds more than that many slots at once,
    and its further waiters step aside for other owners' waiters until it releases one. An owner may also be
    limited in how many waiters it queues: past ``max_queued`` an acquisition fails at once with
    :class:`AdmissionQueueFullError` (backpressure, not unbounded memory).

    Args:
        capacity: how many slots exist (>= 1); changeable later through :attr:`capacity`.
        aging_interval: seconds of waiting that make up one priority level, or None for no aging.
        default_quota: the quota of owners that do not name one (None: no quota).
        max_queued: how many waiters one owner may queue (None: no limit).
        name: shown in statistics.
        latencies: where the waits and holds of :meth:`acquire` and :func:`engine.admit` blocks are
            timed (``gate_wait`` and ``gate_hold`` under ``name``; None: not timed).
    """

    def __init__(
        self,
        capacity: int,
        *,
        aging_interval: float | None = 5.0,
        default_quota: int | None = None,
        max_queued: int | None = None,
        name: str = "",
        latencies: Latencies | None = None,
    ) -> None:
        self._capacity = _check_capacity(capacity)
        if aging_interval is not None and not aging_interval > 0:
            raise InvalidArgumentError(
                f"aging_interval must be positive or None, not {aging_interval!r}"
            )
        self._aging = aging_interval
        self._default_quota = _check_optional_positive("default_quota", default_quota)
        self._max_queued = _check_optional_positive("max_queued", max_queued)
        self.name = name
        self._borrowed = 0
        self._held: dict[Hashable, int] = {}
        self._queued: dict[Hashable, int] = {}
        self._heap: list[_Entry] = []
        self._held_back: dict[Hashable, list[_Entry]] = {}
        self._waiting = 0
        self._dead_in_heap = 0
        self._seq = itertools.count()
        self._granted_total = 0
        self._cancelled_total = 0
        self._rejected_total = 0
        self._timing = latencies
        self._timed = (
            None
            if latencies is None
            else (latencies.histogram("gate_wait", name), latencies.histogram("gate_hold", name))
        )
        self._hold_observer: Callable[[float, int], None] | None = None

    def __repr__(self) -> str:
        return (
            f"<PriorityLimiter {self.name!r} {self._borrowed}/{self._capacity} "
            f"with {self._waiting} waiting>"
        )

    @property
    def capacity(self) -> int:
        """How many slots exist. Setting it admits waiters at once if it grew; if it shrank, holders
        keep their slots and new grants wait until the count is under the new capacity."""
        return self._capacity

    @capacity.setter
    def capacity(self, value: int) -> None:
        self._capacity = _check_capacity(value)
        self._dispatch()

    @property
    def borrowed(self) -> int:
        """How many slots are held now."""
        return self._borrowed

    @property
    def waiting(self) -> int:
        """How many tasks wait for a slot now (as :attr:`LimiterStatistics.waiting`)."""
        return self._waiting

    @property
    def granted_total(self) -> int:
        """Slots handed out since creation."""
        return self._granted_total

    @property
    def cancelled_total(self) -> int:
        """Waiters cancelled before they got a slot, since creation."""
        return self._cancelled_total

    @property
    def rejected_total(self) -> int:
        """Acquisitions refused because an owner's queue was full, since creation."""
        return self._rejected_total

    @property
    def aging_interval(self) -> float | None:
        """Seconds of waiting worth one priority level (None: no aging)."""
        return self._aging

    def aging_bound(self, priority: Priority | int | str) -> float | None:
        """Seconds after its arrival past which nobody who arrives later overtakes a waiter of this
        priority (None without aging)."""
        p = coerce_priority(priority)
        return None if self._aging is None else p.value * self._aging

    def acquire(
        self,
        priority: Priority | int | str = Priority.MEDIUM,
        *,
        owner: Hashable | None = None,
        quota: int | None = None,
        max_queued: int | None = None,
    ) -> _Admission:
        """Return an async context manager that holds one slot for the duration of its block.

        Args:
            priority: the waiter's base priority.
            owner: who the slot is counted against for quotas and queue limits (None: nobody).
            quota: the most slots ``owner`` may hold at once (default: the limiter's ``default_quota``).
            max_queued: the most waiters ``owner`` may queue (default: the limiter's ``max_queued``).

        Entering it waits for a slot. Cancellation while waiting removes the waiter and takes nothing;
        a slot handed over at the very moment of cancellation is kept and released when the block exits,
        so no slot ever leaks. Raises :class:`AdmissionQueueFullError` without waiting when ``owner``
        already has ``max_queued`` waiters.
        """
        p = coerce_priority(priority)
        q = self._default_quota if quota is None else _check_optional_positive("quota", quota)
        mq = (
            self._max_queued
            if max_queued is None
            else _check_optional_positive("max_queued", max_queued)
        )
        return _Admission(self, p, owner, q, mq)

    def acquire_nowait(
        self,
        priority: Priority | int | str = Priority.MEDIUM,
        *,
        owner: Hashable | None = None,
        quota: int | None = None,
    ) -> None:
        """Take a slot now or raise ``trio.WouldBlock``. Pair it with :meth:`release`.

        A slot is taken only when one is free and no waiter is eligible to go first.
        """
        coerce_priority(priority)
        q = self._default_quota if quota is None else _check_optional_positive("quota", quota)
        if not self._try_take(owner, q):
            raise trio.WouldBlock

    async def acquire_slot(
        self,
        priority: Priority | int | str = Priority.MEDIUM,
        *,
        owner: Hashable | None = None,
        quota: int | None = None,
        max_queued: int | None = None,
    ) -> None:
        """Wait for a slot and take it. Pair it with :meth:`release`; prefer :meth:`acquire`.

        Cancellation while waiting takes nothing (see :meth:`acquire`).
        """
        p = coerce_priority(priority)
        q = self._default_quota if quota is None else _check_optional_positive("quota", quota)
        mq = (
            self._max_queued
            if max_queued is None
            else _check_optional_positive("max_queued", max_queued)
        )
        await self._acquire(p, owner, q, mq)

    def release(self, owner: Hashable | None = None) -> None:
        """Give back a slot held by ``owner`` and admit the next eligible waiter.

        Raises:
            RuntimeError: ``owner`` holds no slot here.
        """
        if owner is not None:
            held = self._held.get(owner, 0)
            if held <= 0:
                raise RuntimeError(f"{owner!r} holds no slot of {self!r}")
            if held == 1:
                del self._held[owner]
            else:
                self._held[owner] = held - 1
            back = self._held_back.pop(owner, None)
            if back:
                for entry in back:
                    if entry[2].state == _WAITING:
                        heapq.heappush(self._heap, entry)
        elif self._borrowed <= 0:
            raise RuntimeError(f"{self!r} has no slot to release")
        self._borrowed -= 1
        self._dispatch()

    def observe_holds(self, observer: Callable[[float, int], None] | None) -> None:
        """Call ``observer(seconds, in_flight)`` at the end of every successful hold of an
        :meth:`acquire` or :func:`engine.admit` block: how long the slot was held, and how many
        slots were held just before it was given back (None: stop). One observer at a time (an
        adaptive capacity, :class:`engine.AdaptiveCapacity`); it runs in the releasing task and
        must not block or raise."""
        self._hold_observer = observer

    def _timers(self) -> tuple[LatencyHistogram, LatencyHistogram] | None:
        """The wait and hold histograms while timing is on (None: off, or no histograms)."""
        timing = self._timing
        return self._timed if timing is not None and timing.enabled else None

    def _clock(self) -> float | None:
        """Now on trio's clock when admissions are timed or observed (None: neither)."""
        if self._hold_observer is None and self._timers() is None:
            return None
        return trio.current_time()

    def _waited(self, start: float | None) -> float | None:
        """Count a wait that began at ``start`` (from :meth:`_clock`); when the slot was granted."""
        if start is None:
            return None
        now = trio.current_time()
        timers = self._timers()
        if timers is not None:
            timers[0].observe(now - start)
        return now

    def _held_for(self, granted_at: float | None, *, ok: bool) -> None:
        """Count a hold that began at ``granted_at`` (from :meth:`_waited`); called just after
        its slot was released."""
        if granted_at is None:
            return
        held = trio.current_time() - granted_at
        timers = self._timers()
        if timers is not None:
            timers[1].observe(held, ok=ok)
        if ok and self._hold_observer is not None:
            self._hold_observer(held, self._borrowed + 1)

    def statistics(self) -> LimiterStatistics:
        """Return a snapshot of this limiter's counters."""
        by_priority: dict[str, int] = {}
        held_back = 0
        for _, _, w in self._heap:
            if w.state == _WAITING:
                by_priority[str(w.priority)] = by_priority.get(str(w.priority), 0) + 1
        for entries in self._held_back.values():
            for _, _, w in entries:
                if w.state == _WAITING:
                    held_back += 1
                    by_priority[str(w.priority)] = by_priority.get(str(w.priority), 0) + 1
        return LimiterStatistics(
            name=self.name,
            capacity=self._capacity,
            borrowed=self._borrowed,
            waiting=self._waiting,
            waiting_by_priority=by_priority,
            held_back=held_back,
            owners=len(self._held),
            granted_total=self._granted_total,
            cancelled_total=self._cancelled_total,
            rejected_total=self._rejected_total,
        )

    # -- internals -------------------------------------------------------------------------------

    def _try_take(self, owner: Hashable | None, quota: int | None) -> bool:
        # _dispatch keeps this invariant: while a slot is free, no eligible waiter is queued. So a free
        # slot may be taken at once without overtaking anyone.
        if self._borrowed >= self._capacity:
            return False
        if owner is not None:
            held = self._held.get(owner, 0)
            if quota is not None and held >= quota:
                return False
            self._held[owner] = held + 1
        self._borrowed += 1
        self._granted_total += 1
        return True

    async def _acquire(
        self, priority: Priority, owner: Hashable | None, quota: int | None, max_queued: int | None
    ) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._try_take(owner, quota):
            try:
                await trio.lowlevel.cancel_shielded_checkpoint()
            except BaseException:
                self.release(owner)
                raise
            return
        if owner is not None and max_queued is not None:
            if self._queued.get(owner, 0) >= max_queued:
                self._rejected_total += 1
                raise AdmissionQueueFullError(
                    f"{owner!r} already has {max_queued} waiters queued on {self.name or 'a limiter'}"
                )
        now = trio.current_time()
        key = float(priority.value) if self._aging is None else now + priority.value * self._aging
        waiter = _Waiter(key, next(self._seq), priority, owner, quota, trio.lowlevel.current_task())
        heapq.heappush(self._heap, (key, waiter.seq, waiter))
        self._waiting += 1
        if owner is not None:
            self._queued[owner] = self._queued.get(owner, 0) + 1

        def abort(_: object) -> trio.lowlevel.Abort:
            waiter.state = _CANCELLED
            self._forget(waiter)
            self._cancelled_total += 1
            self._dead_in_heap += 1
            if self._dead_in_heap > 64 and self._dead_in_heap * 2 > len(self._heap):
                self._compact()
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    def _forget(self, waiter: _Waiter) -> None:
        self._waiting -= 1
        owner = waiter.owner
        if owner is not None:
            n = self._queued[owner] - 1
            if n:
                self._queued[owner] = n
            else:
                del self._queued[owner]

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if e[2].state == _WAITING]
        heapq.heapify(self._heap)
        for owner, entries in list(self._held_back.items()):
            live = [e for e in entries if e[2].state == _WAITING]
            if live:
                self._held_back[owner] = live
            else:
                del self._held_back[owner]
        self._dead_in_heap = 0

    def _dispatch(self) -> None:
        heap = self._heap
        while heap and self._borrowed < self._capacity:
            entry = heap[0]
            waiter = entry[2]
            if waiter.state != _WAITING:
                heapq.heappop(heap)
                self._dead_in_heap -= 1
                continue
            owner = waiter.owner
            if owner is not None:
                held = self._held.get(owner, 0)
                if waiter.quota is not None and held >= waiter.quota:
                    heapq.heappop(heap)
                    self._held_back.setdefault(owner, []).append(entry)
                    continue
                self._held[owner] = held + 1
            heapq.heappop(heap)
            waiter.state = _GRANTED
            self._forget(waiter)
            self._borrowed += 1
            self._granted_total += 1
            trio.lowlevel.reschedule(waiter.task, outcome.Value(None))


@final
class _Admission:
    """The async context manager :meth:`PriorityLimiter.acquire` returns. Single use."""

    __slots__ = (
        "_entered",
        "_granted_at",
        "_limiter",
        "_max_queued",
        "_owner",
        "_priority",
        "_quota",
    )

    def __init__(
        self,
        limiter: PriorityLimiter,
        priority: Priority,
        owner: Hashable | None,
        quota: int | None,
        max_queued: int | None,
    ) -> None:
        self._limiter = limiter
        self._priority = priority
        self._owner = owner
        self._quota = quota
        self._max_queued = max_queued
        self._entered = False
        self._granted_at: float | None = None

    async def __aenter__(self) -> None:
        if self._entered:
            raise ReentryError("this admission was already entered; call acquire() again")
        self._entered = True
        start = self._limiter._clock()
        await self._limiter._acquire(self._priority, self._owner, self._quota, self._max_queued)
        self._granted_at = self._limiter._waited(start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._limiter.release(self._owner)
        self._limiter._held_for(self._granted_at, ok=exc is None)


def _check_capacity(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"capacity must be an int >= 1, not {value!r}")
    return value


def _check_optional_positive(what: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{what} must be an int >= 1 or None, not {value!r}")
    return value
