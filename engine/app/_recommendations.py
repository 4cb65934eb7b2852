"""The daemon's recommendations: what its metric history says to change in its configuration.

Today one: the database gate's size (``pool_size``), from the last hour of the history's ring
(:func:`engine.advise_gate`). Shown by ``scribe status`` and in the control ``status`` answer.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

from .._core._gate_advice import GateUse, advise_gate

if TYPE_CHECKING:
    from ._stack import Stack

__all__ = ["recommendations"]

#: Seconds of history a recommendation looks back over.
LOOK_BACK: Final = 3600.0


def recommendations(out: Stack, *, now: float | None = None) -> list[str]:
    """What to change, one sentence each (empty: nothing, or monitoring is off)."""
    history = out.history
    if history is None:
        return []
    until = time.time() if now is None else now
    series = "gate.db.saturated"
    points = history.ring.range([series], until - LOOK_BACK, until, max_points=60)[series]
    if not points:
        return []
    stats = out.engine.statistics()
    gate = stats.gates.get("db")
    if gate is None:
        return []
    use = GateUse(
        name="db",
        setting="pool_size",
        size=out.config.pool_size,
        capacity=gate.capacity,
        saturated=sum(mean for _, mean, _ in points) / len(points),
        seconds=until - points[0][0],
        adaptive=stats.adaptive.get("db"),
    )
    advice = advise_gate(use)
    return [] if advice is None else [advice]
