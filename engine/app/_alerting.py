"""The daemon's alert rules and their judge (every ``health_interval``, on the history's tick).

Rules (thresholds from :mod:`._monitor_settings`; each alert's name in brackets):

- a gate full with tasks waiting for ``alert_gate_saturated_seconds`` (``gate_saturated:<gate>``);
- the event loop waking ``alert_loop_lag_ms`` late (``loop_lag``);
- the database probe finding the database down (``database_down``);
- a context or memory source failing ``alert_source_failure_percent`` of at least
  :data:`MIN_CALLS` calls over the last :data:`WINDOW` seconds
  (``source_failing:<context_source|memory_source>:<name>``);
- ``alert_backlog_entries`` worklog entries carried across a database outage (``backlog``);
- the home's file system ``alert_disk_percent`` full (``disk``);
- the scribe's watchers holding ``alert_watch_percent`` of the system's inotify watches
  (``watch_limit``), or meeting a kernel queue overflow in the last :data:`OVERFLOW_WINDOW`
  seconds (``watcher_overflow``: events were lost and the tree rescanned).

All but the gate rule fire once they have held ``alert_for_seconds``; every alert resolves once
clear that long. :class:`AlertJudge` publishes each change as a ``health.alert`` engine event (the
feed's ``health`` topic, keyed ``alert:<name>``), hands it to a webhook when one is configured,
and the book's :meth:`~engine.AlertBook.health` is the ``alerts`` check of ``/health``.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol, final

from .._core._alerts import Alert, AlertBook, AlertCheck
from .._core._errors import InvalidArgumentError
from .._core._health import HealthCheck
from .._core._latency import Latencies
from .._core._limiter import PriorityLimiter
from ._monitor_settings import MonitorSettings

__all__ = ["MIN_CALLS", "WINDOW", "AlertJudge", "AlertRules"]

#: Seconds over which a source's failures are counted.
WINDOW: Final = 300.0
#: The fewest calls in the window for a source's failures to count.
MIN_CALLS: Final = 10
#: Seconds a watcher overflow keeps its alert active.
OVERFLOW_WINDOW: Final = 60.0
#: Seconds between two looks at the home's file system.
_DISK_EVERY: Final = 10.0
#: Seconds between two snapshots of the histograms kept for the window.
_SNAPSHOT_EVERY: Final = 10.0
_SOURCE_KINDS: Final = ("context_source", "memory_source")


class _Poster(Protocol):
    def post_nowait(self, payload: Mapping[str, Any]) -> None: ...


class _WatchTotals(Protocol):
    @property
    def watches(self) -> int: ...
    @property
    def overflows(self) -> int: ...
    @property
    def max_user_watches(self) -> int | None: ...


class AlertRules:
    """Judges the rules from what the stack shows.

    Args:
        settings: the thresholds.
        gates: the engine's gates (:meth:`engine.Engine.gates`), read in place.
        latencies: the engine's histograms (sources' calls and failures).
        checks: the parts' health checks (``database``, ``capture``).
        home: the directory whose file system is watched for space.
        watches: the watchers' totals (None: no watcher rules).
    """

    def __init__(
        self,
        settings: MonitorSettings,
        *,
        gates: Callable[[], Mapping[str, PriorityLimiter]],
        latencies: Latencies,
        checks: Callable[[], Mapping[str, HealthCheck]],
        home: Path,
        watches: Callable[[], _WatchTotals] | None = None,
    ) -> None:
        self.settings = settings
        self._gates = gates
        self._latencies = latencies
        self._checks = checks
        self._home = home
        # (when, each source histogram's (calls, errors) then), one every _SNAPSHOT_EVERY seconds
        self._window: deque[tuple[float, dict[tuple[str, str], tuple[int, int]]]] = deque()
        self._watches = watches
        self._overflows: int | None = None
        self._overflow_at = -math.inf
        self._disk_checked: tuple[float, AlertCheck] | None = None

    def judge(self, now: float, loop_lag: float | None) -> dict[str, AlertCheck]:
        """Every rule's check at ``now`` (trio's clock) with the loop's last measured lag."""
        s = self.settings
        hold = s.alert_for_seconds
        out: dict[str, AlertCheck] = {}
        for name, g in self._gates().items():
            out[f"gate_saturated:{name}"] = self._gate(name, g.borrowed, g.capacity, g.waiting)
        lag_ms = 0.0 if loop_lag is None else loop_lag * 1000.0
        out["loop_lag"] = AlertCheck(
            lag_ms > s.alert_loop_lag_ms,
            f"the event loop woke {lag_ms:.0f} ms late",
            round(lag_ms, 3),
            s.alert_loop_lag_ms,
            hold,
        )
        checks = self._checks()
        database = checks.get("database")
        if database is not None:
            down = database.status == "down"
            out["database_down"] = AlertCheck(
                down, "the database does not answer" if down else "the database answers", hold=hold
            )
        capture = checks.get("capture")
        if capture is not None:
            carried = float(capture.detail.get("carried", 0))
            out["backlog"] = AlertCheck(
                carried >= s.alert_backlog_entries,
                f"{carried:.0f} worklog entries carried, not yet stored",
                carried,
                s.alert_backlog_entries,
                hold,
            )
        out.update(self._sources(now))
        if self._disk_checked is None or now - self._disk_checked[0] >= _DISK_EVERY:
            self._disk_checked = (now, self._disk())
        out["disk"] = self._disk_checked[1]
        if self._watches is not None:
            out.update(self._watchers(now, self._watches()))
        return out

    def _gate(self, name: str, borrowed: int, capacity: int, waiting: int) -> AlertCheck:
        seconds = self.settings.alert_gate_saturated_seconds
        return AlertCheck(
            borrowed >= capacity and waiting > 0,
            f"gate {name} is full ({borrowed}/{capacity}) with {waiting} waiting",
            waiting,
            seconds,
            seconds,
        )

    def _watchers(self, now: float, totals: _WatchTotals) -> dict[str, AlertCheck]:
        if self._overflows is not None and totals.overflows > self._overflows:
            self._overflow_at = now
        self._overflows = totals.overflows
        out = {
            "watcher_overflow": AlertCheck(
                now - self._overflow_at < OVERFLOW_WINDOW,
                "a watcher's kernel queue overflowed: changes were rescanned",
                totals.overflows,
            )
        }
        limit = totals.max_user_watches
        if limit:
            share = 100.0 * totals.watches / limit
            threshold = self.settings.alert_watch_percent
            out["watch_limit"] = AlertCheck(
                share >= threshold,
                f"{totals.watches} of the system's {limit} inotify watches in use",
                round(share, 3),
                threshold,
                self.settings.alert_for_seconds,
            )
        return out

    def _sources(self, now: float) -> dict[str, AlertCheck]:
        latest = {
            k: (h.calls, h.errors) for k, h in self._latencies.histograms() if k[0] in _SOURCE_KINDS
        }
        if not self._window or now - self._window[-1][0] >= _SNAPSHOT_EVERY:
            self._window.append((now, latest))
        while len(self._window) > 1 and now - self._window[1][0] >= WINDOW:
            self._window.popleft()
        first = self._window[0][1]
        threshold = self.settings.alert_source_failure_percent
        out: dict[str, AlertCheck] = {}
        for (kind, name), (total, failed) in latest.items():
            before = first.get((kind, name), (0, 0))
            calls, errors = total - before[0], failed - before[1]
            if calls < MIN_CALLS:
                continue
            share = 100.0 * errors / calls
            out[f"source_failing:{kind}:{name}"] = AlertCheck(
                share >= threshold,
                f"{kind.replace('_', ' ')} {name} failed {errors} of its last {calls} calls",
                round(share, 1),
                threshold,
                self.settings.alert_for_seconds,
            )
        return out

    def _disk(self) -> AlertCheck:
        try:
            st = os.statvfs(self._home)
        except OSError as exc:
            return AlertCheck(False, f"the home's file system cannot be read: {exc.strerror}")
        used = 100.0 * (1 - st.f_bavail / st.f_blocks) if st.f_blocks else 0.0
        threshold = self.settings.alert_disk_percent
        return AlertCheck(
            used >= threshold,
            f"the home's file system is {used:.0f}% full",
            round(used, 1),
            threshold,
            self.settings.alert_for_seconds,
        )


@final
class AlertJudge:
    """Judges ``rules`` into ``book`` every ``interval`` seconds of the ticks it is given, and
    hands each alert that fires or resolves to ``publish`` and to ``webhook``.

    The daemon gives it the metric history's ticks (:func:`engine.run_metric_history`'s
    ``after_sample``), so sampling and judging share one wake-up a second and judging reads what
    the sample has just read. While the history's switch is off there is no tick: nothing is
    judged and the alerts keep their states.

    Args:
        rules: the rules.
        book: the alerts' states.
        publish: called with each alert that changed.
        webhook: also given each change (None: none).
        interval: seconds between two judgements (trio's clock).
        wall: the wall clock alerts are labelled with.
    """

    def __init__(
        self,
        rules: AlertRules,
        book: AlertBook,
        publish: Callable[[Alert], object],
        *,
        webhook: _Poster | None = None,
        interval: float = 1.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not (math.isfinite(interval) and interval > 0):
            raise InvalidArgumentError(f"interval must be positive seconds, not {interval!r}")
        self.rules = rules
        self.book = book
        self._publish = publish
        self._webhook = webhook
        self._interval = interval
        self._wall = wall
        self._judged: float | None = None  # when it last judged (trio's clock)
        self._lag: float | None = None  # the worst lag of the ticks since then

    def tick_nowait(self, now: float, lag: float | None) -> None:
        """One tick at ``now`` (trio's clock) whose wake-up ran ``lag`` seconds late (None: not
        measured): judge once ``interval`` seconds have passed since the last judgement (at the
        first tick too), with the worst lag of the ticks since."""
        if lag is not None and (self._lag is None or lag > self._lag):
            self._lag = lag
        # a tick early by less than a hundredth of the interval still counts as on time
        if self._judged is not None and now - self._judged < self._interval * 0.99:
            return
        self._judged = now
        lag, self._lag = self._lag, None
        for alert in self.book.update(now, self._wall(), self.rules.judge(now, lag)):
            self._publish(alert)
            if self._webhook is not None:
                self._webhook.post_nowait({"source": "scribe", **alert.as_dict()})
