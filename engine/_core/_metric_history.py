"""The metric history service: sample every second into the ring, keep the minutes in a store.

:func:`run_metric_history` is a service (``eng.start_service``): it reads ``collect()`` every
``interval`` seconds (trio's clock; times recorded on ``wall``, the wall clock), turns counters
into per-second rates, measures the loop's lag, records the sample in :class:`MetricHistory`'s
ring, and stores each closed minute in a store (a :class:`~engine.MetricStore`) from a second
task, so a slow or absent database never delays a sample: minutes not yet stored wait in a
bounded queue (the oldest dropped past it) and are retried. It sweeps the store on an interval.
:meth:`MetricHistory.range` answers from the ring when the range fits in it, else from the store.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn, Protocol, final

import trio

from ._errors import InvalidArgumentError, ScribeError
from ._log_throttle import LogThrottle
from ._metric_ring import MINUTE, HistoryPoint, MetricRing, MinuteRollup, rollup_points
from ._monitoring_switch import MonitoringSwitch

__all__ = [
    "HistoryRange",
    "MetricHistory",
    "MetricHistoryStatistics",
    "Readings",
    "run_metric_history",
]

_log = logging.getLogger(__name__)

#: Seconds one store call may take before it counts as failed.
STORE_TIMEOUT: Final = 30.0
#: Ranges up to this many seconds are answered from the ring, even when it is younger.
RING_SPAN: Final = 900.0
#: Series the sampler adds itself: how late its timed wake-up ran, in milliseconds.
LOOP_LAG: Final = "loop.lag_ms"


class HistoryUnavailableError(ScribeError):
    """The store did not answer a range within :data:`STORE_TIMEOUT` seconds."""


class _Store(Protocol):
    async def put_minutes(self, minutes: Sequence[MinuteRollup]) -> None: ...
    async def minutes(
        self, names: Collection[str], since: float, until: float
    ) -> list[MinuteRollup]: ...
    async def sweep(self, before: float, *, max_rows: int) -> int: ...


@final
@dataclass(frozen=True, slots=True)
class Readings:
    """What ``collect()`` returns: gauges as they are, counters (totals since start) to be turned
    into rates (series ``<name>.rate``, per second). The parts of a sample fill one ``Readings``
    in place (:func:`engine.engine_readings`, :meth:`engine.LatencyReadings.readings`)."""

    gauges: dict[str, float] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)


@final
@dataclass(frozen=True, slots=True)
class HistoryRange:
    """The answer to :meth:`MetricHistory.range`.

    Attributes:
        since: the range's start (wall-clock seconds).
        until: its end (exclusive).
        step: seconds each point spans (1 or more from the ring, 60 or more from the store).
        source: ``ring`` (per-second samples) or ``store`` (minute roll-ups).
        series: each series' ``(start, mean, peak)`` points, oldest first.
    """

    since: float
    until: float
    step: float
    source: str
    series: dict[str, list[HistoryPoint]]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "since": self.since,
            "until": self.until,
            "step": self.step,
            "source": self.source,
            "series": {name: [list(p) for p in points] for name, points in self.series.items()},
        }


@final
@dataclass(frozen=True, slots=True)
class MetricHistoryStatistics:
    """A snapshot of a :class:`MetricHistory`.

    Attributes:
        samples: samples taken since start.
        pending: closed minutes not stored yet.
        stored: minutes stored.
        dropped_minutes: minutes dropped because the queue of pending ones was full.
        store_errors: store calls that failed or ran out of time.
        swept: roll-ups deleted by sweeps.
    """

    samples: int
    pending: int
    stored: int
    dropped_minutes: int
    store_errors: int
    swept: int


@final
class MetricHistory:
    """The ring of recent samples and the minutes waiting to be stored.

    Args:
        ring: where samples go (default: the last hour at one a second).
        store: where closed minutes are kept (None: nowhere; ranges come from the ring only).
        retention: seconds a stored minute is kept (default 30 days).
        max_rows: the most minutes kept in the store (default: 30 days of them).
        max_pending: the most closed minutes waiting to be stored (the oldest dropped past it).
    """

    def __init__(
        self,
        ring: MetricRing | None = None,
        store: _Store | None = None,
        *,
        retention: float = 30 * 86400.0,
        max_rows: int = 30 * 1440,
        max_pending: int = 120,
    ) -> None:
        if not (math.isfinite(retention) and retention >= MINUTE):
            raise InvalidArgumentError(f"retention must be at least 60 s, not {retention!r}")
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise InvalidArgumentError(f"max_rows must be an int >= 1, not {max_rows!r}")
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise InvalidArgumentError(f"max_pending must be an int >= 1, not {max_pending!r}")
        self.ring = ring if ring is not None else MetricRing()
        self.store = store
        self.retention = retention
        self.max_rows = max_rows
        self._pending: deque[MinuteRollup] = deque()
        self._max_pending = max_pending
        self._wake = trio.Event()
        self._samples = self._stored = self._dropped = self._errors = self._swept = 0

    def record_nowait(self, at: float, values: Mapping[str, float]) -> None:
        """Add one sample taken at ``at`` (wall-clock seconds); a minute it closes is queued for
        the store."""
        self._samples += 1
        closed = self.ring.record_nowait(at, values)
        if closed is not None and self.store is not None:
            if len(self._pending) >= self._max_pending:
                self._pending.popleft()
                self._dropped += 1
            self._pending.append(closed)
            self._wake.set()

    async def range(
        self, names: Collection[str], since: float, until: float, *, max_points: int = 720
    ) -> HistoryRange:
        """Each series of ``names`` over ``[since, until)`` (wall-clock seconds), in at most
        ``max_points`` points: per-second samples when the ring still holds ``since`` or the
        range spans at most :data:`RING_SPAN` seconds, else minute roll-ups from the store (with
        the minutes not stored yet and the open one).

        Raises:
            ScribeError: the store failed (from the store).
            HistoryUnavailableError: the store did not answer in time.

        Cancellation: the store's read is abandoned; nothing changes.
        """
        span = max(0.0, until - since)
        oldest = self.ring.oldest
        recent = oldest is not None and (since >= oldest - 1.0 or span <= RING_SPAN)
        if self.store is None or recent:
            step = max(1.0, float(math.ceil(span / max_points)))
            return HistoryRange(
                since,
                until,
                step,
                "ring",
                self.ring.range(names, since, until, max_points=max_points),
            )
        step = max(MINUTE, math.ceil(span / max_points / MINUTE) * MINUTE)
        first = math.floor(since / MINUTE) * MINUTE
        with trio.move_on_after(STORE_TIMEOUT) as waited:
            stored = await self.store.minutes(names, first, until)
        if waited.cancelled_caught:
            raise HistoryUnavailableError(f"the store did not answer within {STORE_TIMEOUT:g} s")
        by_minute = {m.minute: m for m in stored}
        open_minute = self.ring.open_minute()
        for m in (*self._pending, *(() if open_minute is None else (open_minute,))):
            if first <= m.minute < until:
                by_minute[m.minute] = m
        minutes = [by_minute[k] for k in sorted(by_minute)]
        return HistoryRange(since, until, step, "store", rollup_points(minutes, names, first, step))

    def statistics(self) -> MetricHistoryStatistics:
        """A snapshot of its counters."""
        return MetricHistoryStatistics(
            samples=self._samples,
            pending=len(self._pending),
            stored=self._stored,
            dropped_minutes=self._dropped,
            store_errors=self._errors,
            swept=self._swept,
        )

    async def _store_pending(self, store: _Store, throttle: LogThrottle) -> bool:
        batch = list(self._pending)
        try:
            with trio.fail_after(STORE_TIMEOUT):
                await store.put_minutes(batch)
        except (ScribeError, trio.TooSlowError) as exc:
            self._errors += 1
            throttle.failed("store", "metric history: minutes not stored yet: %s", exc)
            return False
        throttle.recovered("store", "metric history: minutes stored again")
        stored = {m.minute for m in batch}
        self._pending = deque(m for m in self._pending if m.minute not in stored)
        self._stored += len(batch)
        return True

    async def _sweep(self, store: _Store, before: float, throttle: LogThrottle) -> None:
        try:
            with trio.fail_after(STORE_TIMEOUT):
                self._swept += await store.sweep(before, max_rows=self.max_rows)
        except (ScribeError, trio.TooSlowError) as exc:
            self._errors += 1
            throttle.failed("sweep", "metric history: sweep failed: %s", exc)

    async def _write(
        self, wall: Callable[[], float], sweep_interval: float, retry: float
    ) -> NoReturn:
        store = self.store
        assert store is not None
        throttle = LogThrottle(_log)
        next_sweep = trio.current_time()
        while True:
            if trio.current_time() >= next_sweep:
                await self._sweep(store, wall() - self.retention, throttle)
                next_sweep = trio.current_time() + sweep_interval
            if self._pending:
                if not await self._store_pending(store, throttle):
                    await trio.sleep(retry)
                continue  # more may have closed meanwhile
            self._wake = trio.Event()
            with trio.move_on_at(next_sweep):
                await self._wake.wait()


async def run_metric_history(
    history: MetricHistory,
    collect: Callable[[], Readings],
    *,
    interval: float = 1.0,
    wall: Callable[[], float] = time.time,
    sweep_interval: float = 3600.0,
    retry: float = 5.0,
    switch: MonitoringSwitch | None = None,
    after_sample: Callable[[float, float | None], object] | None = None,
    task_status: trio.TaskStatus[MetricHistory] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Sample ``collect()`` into ``history`` every ``interval`` seconds until cancelled.

    Args:
        history: where samples go (its store, if any, gets the closed minutes).
        collect: the current readings; called on the trio thread, it must not block.
        interval: seconds between samples (trio's clock).
        wall: the wall clock samples are timed with (seconds since the epoch).
        sweep_interval: seconds between two sweeps of the store.
        retry: seconds before storing again after the store failed.
        switch: while it is off, no sample is taken (the loop waits without waking; the first
            sample after it is back has no rates, as no span was measured).
        after_sample: called on the same tick after each sample with trio's time of the sample
            and how late the tick woke (seconds; None for the first one): more work on the
            sampler's wake-up (the daemon judges its alerts there) instead of a wake-up of its
            own. It must not block; an exception it raises is logged (at most once a minute)
            and sampling goes on.

    The first sample is taken at once. Cancellation ends it between samples, or abandons a store
    call in progress (its minutes stay pending in memory).
    """
    for what, value in (
        ("interval", interval),
        ("sweep_interval", sweep_interval),
        ("retry", retry),
    ):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise InvalidArgumentError(f"{what} must be positive seconds, not {value!r}")
    totals: dict[str, float] = {}  # the counters of the previous sample
    rate_names: dict[str, str] = {}  # counter -> its series (made once, not at every sample)
    then: float | None = None  # when the previous sample was taken
    lag: float | None = None
    throttle = LogThrottle(_log)
    async with trio.open_nursery() as nursery:
        if history.store is not None:
            nursery.start_soon(history._write, wall, sweep_interval, retry)
        task_status.started(history)
        while True:
            if switch is not None and not switch.enabled:
                await switch.wait_enabled()
                then = lag = None
            now = trio.current_time()
            readings = collect()
            values = dict(readings.gauges)
            if lag is not None:
                values[LOOP_LAG] = lag * 1000.0
            counters = readings.counters
            if then is not None and now > then:
                span = now - then
                for name, total in counters.items():
                    before = totals.get(name)
                    if before is not None:
                        rate = rate_names.get(name)
                        if rate is None:
                            rate = rate_names[name] = f"{name}.rate"
                        values[rate] = (total - before) / span if total > before else 0.0
            totals = dict(counters)
            then = now
            history.record_nowait(wall(), values)
            if after_sample is not None:
                try:
                    after_sample(now, lag)
                except Exception as exc:  # a failing hook stops no sample
                    throttle.failed("after", "metric history: after_sample failed: %r", exc, exc=exc)
            deadline = now + interval
            await trio.sleep_until(deadline)
            lag = max(0.0, trio.current_time() - deadline)
