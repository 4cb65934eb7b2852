"""The engine's own series for the metric history, read from one :meth:`Engine.statistics` snapshot.

Gauges: ``sessions.live``, ``sessions.<state>``, ``events.subscribers`` and per gate
``gate.<name>.capacity``, ``.borrowed``, ``.waiting``, ``.use`` (borrowed over capacity) and
``.saturated`` (1 while every slot is held and tasks wait, else 0: its mean over a span is the
share of it the gate was saturated).
Counters (rates in the history): ``sessions.started``, ``events.published`` and per gate
``gate.<name>.granted``, ``.cancelled`` and ``.rejected``.
"""

from __future__ import annotations

from ._engine import EngineStatistics
from ._metric_history import Readings

__all__ = ["engine_readings"]


def engine_readings(stats: EngineStatistics) -> Readings:
    """The series of one engine snapshot."""
    gauges: dict[str, float] = {
        "sessions.live": stats.live_sessions,
        "events.subscribers": stats.subscribers,
    }
    for state, count in stats.sessions_by_state.items():
        gauges[f"sessions.{state}"] = count
    counters: dict[str, float] = {
        "sessions.started": stats.sessions_started,
        "events.published": stats.events_published,
    }
    for name, gate in stats.gates.items():
        gauges[f"gate.{name}.capacity"] = gate.capacity
        gauges[f"gate.{name}.borrowed"] = gate.borrowed
        gauges[f"gate.{name}.waiting"] = gate.waiting
        gauges[f"gate.{name}.use"] = gate.borrowed / gate.capacity if gate.capacity else 0.0
        full = gate.borrowed >= gate.capacity and gate.waiting > 0
        gauges[f"gate.{name}.saturated"] = 1.0 if full else 0.0
        counters[f"gate.{name}.granted"] = gate.granted_total
        counters[f"gate.{name}.cancelled"] = gate.cancelled_total
        counters[f"gate.{name}.rejected"] = gate.rejected_total
    return Readings(gauges, counters)
