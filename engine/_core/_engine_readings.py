"""The engine's own series for the metric history, read from the engine without a snapshot of
each gate.

Gauges: ``sessions.live``, ``sessions.<state>``, ``events.subscribers`` and per gate
``gate.<name>.capacity``, ``.borrowed``, ``.waiting`` and ``.use`` (borrowed over capacity).
Counters (rates in the history): ``sessions.started``, ``events.published`` and per gate
``gate.<name>.granted``, ``.cancelled`` and ``.rejected``.
"""

from __future__ import annotations

import functools

from ._engine import Engine
from ._metric_history import Readings

__all__ = ["engine_readings"]


@functools.cache
def _gate_names(gate: str) -> tuple[str, ...]:
    """A gate's series names (made once per gate, not at every sample)."""
    return tuple(
        f"gate.{gate}.{what}"
        for what in ("capacity", "borrowed", "waiting", "use", "granted", "cancelled", "rejected")
    )


@functools.cache
def _state_name(state: str) -> str:
    return f"sessions.{state}"


def engine_readings(eng: Engine) -> Readings:
    """The series of the engine now (its counters and each gate's, read in place)."""
    stats = eng.statistics(gates=False)
    gauges: dict[str, float] = {
        "sessions.live": stats.live_sessions,
        "events.subscribers": stats.subscribers,
    }
    for state, count in stats.sessions_by_state.items():
        gauges[_state_name(state)] = count
    counters: dict[str, float] = {
        "sessions.started": stats.sessions_started,
        "events.published": stats.events_published,
    }
    for name, gate in eng.gates().items():
        capacity, borrowed, waiting, use, granted, cancelled, rejected = _gate_names(name)
        cap, held = gate.capacity, gate.borrowed
        gauges[capacity] = cap
        gauges[borrowed] = held
        gauges[waiting] = gate.waiting
        gauges[use] = held / cap if cap else 0.0
        counters[granted] = gate.granted_total
        counters[cancelled] = gate.cancelled_total
        counters[rejected] = gate.rejected_total
    return Readings(gauges, counters)
