"""Health monitor and metrics sampler: periodic ``health`` and ``metrics`` events from engine statistics.

:class:`HealthMonitor` turns one :meth:`Engine.statistics` snapshot (plus the measured lag of the trio
loop) into the two payloads and keeps the little state a judgement needs (how long a gate has been
saturated, the previous event count for a rate). :func:`run_health_monitor` is the service that
samples on an interval and publishes both; start it with ``eng.start_service``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol, final

import trio

from ._errors import InvalidArgumentError

__all__ = ["HealthCheck", "HealthChecks", "HealthMonitor", "HealthSample", "run_health_monitor"]


@final
@dataclass(frozen=True, slots=True)
class HealthCheck:
    """One part's own judgement of its health (the database, the capture backlog ...).

    Attributes:
        ok: False makes the whole sample ``degraded``.
        status: a word for the part's state (``up``, ``down``, ``carrying`` ...), shown at the top
            level of the health payload under the check's name.
        problem: what is wrong, in a few words (None when ok).
        detail: JSON-ready facts shown with the check (no notes, paths or tokens).
    """

    ok: bool
    status: str
    problem: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


#: Returns the parts' current checks by name; called once per sample, it must not block.
HealthChecks = Callable[[], Mapping[str, HealthCheck]]


class _GateStatistics(Protocol):
    @property
    def capacity(self) -> int: ...
    @property
    def borrowed(self) -> int: ...
    @property
    def waiting(self) -> int: ...


class _EngineStatistics(Protocol):
    @property
    def sessions_by_state(self) -> Mapping[str, int]: ...
    @property
    def gates(self) -> Mapping[str, _GateStatistics]: ...
    @property
    def events_published(self) -> int: ...
    @property
    def subscribers(self) -> int: ...


class _Engine(Protocol):
    def statistics(self) -> _EngineStatistics: ...
    def publish_nowait(
        self, topic: str, payload: Mapping[str, Any], *, session_id: str | None = None
    ) -> object: ...


@final
@dataclass(frozen=True, slots=True)
class HealthSample:
    """One sample: the ``health`` and ``metrics`` payloads (JSON-ready dicts)."""

    health: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def ok(self) -> bool:
        """Whether every health check passed."""
        return bool(self.health["status"] == "ok")


@final
@dataclass(slots=True)
class HealthMonitor:
    """Judges engine health from statistics snapshots.

    Checks:
        loop: the trio loop's lag (how late a timed wake-up ran) is under ``max_loop_lag`` seconds.
        gates: no gate has been full with tasks waiting for ``saturated_samples`` samples in a row.

    Args:
        max_loop_lag: loop lag in seconds above which the engine is degraded.
        saturated_samples: consecutive saturated samples after which a gate is degraded.
    """

    max_loop_lag: float = 0.25
    saturated_samples: int = 5
    _saturated: dict[str, int] = field(default_factory=dict)
    _last_events: int | None = None
    _last_time: float | None = None

    def sample(
        self,
        stats: _EngineStatistics,
        *,
        now: float,
        loop_lag: float | None = None,
        checks: Mapping[str, HealthCheck] | None = None,
    ) -> HealthSample:
        """Build the payloads for one snapshot taken at ``now`` (seconds, any monotonic clock),
        with the parts' own ``checks`` (each shown under its name; one not ok degrades the sample)."""
        gates: dict[str, Any] = {}
        gate_metrics: dict[str, Any] = {}
        degraded: list[str] = []
        for name, g in sorted(stats.gates.items()):
            saturated = g.borrowed >= g.capacity and g.waiting > 0
            run = self._saturated.get(name, 0) + 1 if saturated else 0
            self._saturated[name] = run
            gate_ok = run < self.saturated_samples
            if not gate_ok:
                degraded.append(f"gate {name} saturated for {run} samples")
            gates[name] = {"ok": gate_ok, "saturated": saturated, "saturated_samples": run}
            gate_metrics[name] = {
                "capacity": g.capacity,
                "borrowed": g.borrowed,
                "waiting": g.waiting,
            }
        loop_ok = loop_lag is None or loop_lag <= self.max_loop_lag
        if not loop_ok:
            degraded.append(f"loop lag {loop_lag:.3f}s over {self.max_loop_lag:.3f}s")
        rate = 0.0
        if self._last_events is not None and self._last_time is not None and now > self._last_time:
            rate = (stats.events_published - self._last_events) / (now - self._last_time)
        self._last_events = stats.events_published
        self._last_time = now
        parts: dict[str, Any] = {}
        part_checks: dict[str, Any] = {}
        for name, check in sorted((checks or {}).items()):
            parts[name] = check.status
            part_checks[name] = {"ok": check.ok, "status": check.status, **check.detail}
            if not check.ok:
                degraded.append(f"{name}: {check.problem or check.status}")
        by_state = dict(sorted(stats.sessions_by_state.items()))
        lag_ms = None if loop_lag is None else round(loop_lag * 1000, 3)
        health = {
            "status": "ok" if not degraded else "degraded",
            **parts,
            "problems": degraded,
            "checks": {
                "loop": {"ok": loop_ok, "lag_ms": lag_ms},
                "gates": gates,
                **part_checks,
            },
            "sessions": {
                "total": sum(by_state.values()),
                "failed": by_state.get("failed", 0),
                "orphaned": by_state.get("orphaned", 0),
            },
        }
        metrics = {
            "sessions_by_state": by_state,
            "sessions_total": sum(by_state.values()),
            "gates": gate_metrics,
            "events_published": stats.events_published,
            "events_per_second": round(rate, 3),
            "subscribers": stats.subscribers,
            "loop_lag_ms": lag_ms,
        }
        return HealthSample(health, metrics)


async def run_health_monitor(
    eng: _Engine,
    interval: float = 1.0,
    *,
    monitor: HealthMonitor | None = None,
    checks: HealthChecks | None = None,
    task_status: trio.TaskStatus[HealthMonitor] = trio.TASK_STATUS_IGNORED,
) -> NoReturn:
    """Publish ``health`` and ``metrics`` events every ``interval`` seconds until cancelled.

    Start it as a service: ``eng.start_service(run_health_monitor, eng, 1.0, name="health")``. The first
    sample is published at once (with no loop lag measured yet). Cancellation ends it between
    samples; nothing is left half-published. ``checks`` gives the parts' own checks for each sample.
    """
    if not interval > 0:
        raise InvalidArgumentError(f"interval must be > 0, not {interval!r}")
    monitor = monitor if monitor is not None else HealthMonitor()
    lag: float | None = None
    task_status.started(monitor)
    while True:
        found = checks() if checks is not None else None
        sample = monitor.sample(
            eng.statistics(), now=trio.current_time(), loop_lag=lag, checks=found
        )
        eng.publish_nowait("health", sample.health)
        eng.publish_nowait("metrics", sample.metrics)
        deadline = trio.current_time() + interval
        await trio.sleep_until(deadline)
        lag = max(0.0, trio.current_time() - deadline)
