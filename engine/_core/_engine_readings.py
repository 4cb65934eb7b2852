"""The engine's own series for the metric history, read from the engine without a snapshot of
each gate.

Gauges: ``sessions.live``, ``sessions.<state>``, ``events.subscribers`` and per gate
``gate.<name>.capacity``, ``.borrowed``, ``.waiting``, ``.use`` (borrowed over capacity) and
``.saturated`` (1 while every slot is held and tasks wait, else 0: its mean over a span is the
share of it the gate was saturated).
Counters (rates in the history): ``sessions.started``, ``events.published`` and per gate
``gate.<name>.granted``, ``.cancelled`` and ``.rejected``.
"""

from __future__ import annotations

import functools

from ._engine import Engine
from ._metric_history import Readings

__all__ = ["engine_readings"]


#: The series of each gate, in the order :func:`_gate_names` gives their names.
_GATE_SERIES = (
    "capacity",
    "borrowed",
    "waiting",
    "use",
    "saturated",
    "granted",
    "cancelled",
    "rejected",
)


@functools.cache
def _gate_names(gate: str) -> tuple[str, ...]:
    """A gate's series names (made once per gate, not at every sample)."""
    return tuple(f"gate.{gate}.{what}" for what in _GATE_SERIES)


@functools.cache
def _state_name(state: str) -> str:
    return f"sessions.{state}"


def engine_readings(eng: Engine, into: Readings | None = None) -> Readings:
    """The series of the engine now (its counters and each gate's, read in place), added to
    ``into`` (None: a new :class:`Readings`), which is returned."""
    out = Readings() if into is None else into
    stats = eng.statistics(gates=False)
    gauges, counters = out.gauges, out.counters
    gauges["sessions.live"] = stats.live_sessions
    gauges["events.subscribers"] = stats.subscribers
    for state, count in stats.sessions_by_state.items():
        gauges[_state_name(state)] = count
    counters["sessions.started"] = stats.sessions_started
    counters["events.published"] = stats.events_published
    for name, gate in eng.gates().items():
        capacity, borrowed, waiting, use, saturated, granted, cancelled, rejected = _gate_names(
            name
        )
        cap, held, queued = gate.capacity, gate.borrowed, gate.waiting
        gauges[capacity] = cap
        gauges[borrowed] = held
        gauges[waiting] = queued
        gauges[use] = held / cap if cap else 0.0
        gauges[saturated] = 1.0 if held >= cap and queued > 0 else 0.0
        counters[granted] = gate.granted_total
        counters[cancelled] = gate.cancelled_total
        counters[rejected] = gate.rejected_total
    return out
