"""What a gate's recent use says about its size: a recommendation people can act on, or none.

No trio and no I/O: :func:`advise_gate` reads a :class:`GateUse` (the share of sampled seconds
the gate was full with tasks waiting, from the metric history's ``gate.<name>.saturated`` series,
and its adaptive capacity's hold times) and says what to change, in one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, final

from ._adaptive import AdaptiveStatistics

__all__ = ["ADVICE_MIN_SPAN", "ADVICE_SATURATED_SHARE", "GateUse", "advise_gate"]

#: The least seconds of samples a recommendation is made from.
ADVICE_MIN_SPAN: Final = 600.0
#: The share of those seconds a gate must have been saturated for a recommendation.
ADVICE_SATURATED_SHARE: Final = 0.5


@final
@dataclass(frozen=True, slots=True)
class GateUse:
    """A gate's use over a span of samples.

    Attributes:
        name: the gate.
        setting: the configuration setting that sizes it (``pool_size`` for ``db``).
        size: that setting's value (the most slots the gate may have).
        capacity: the gate's slots now (below ``size`` when an adaptive capacity lowered it).
        saturated: the share of the sampled seconds it was full with tasks waiting (0 to 1).
        seconds: how many seconds the samples span.
        adaptive: its adaptive capacity's statistics (None: its capacity is fixed).
    """

    name: str
    setting: str
    size: int
    capacity: int
    saturated: float
    seconds: float
    adaptive: AdaptiveStatistics | None = None


def _span(seconds: float) -> str:
    minutes = round(seconds / 60)
    return "the last hour" if minutes >= 60 else f"the last {minutes} minutes"


def advise_gate(use: GateUse) -> str | None:
    """One sentence saying how to size the gate, or None (too few samples, or nothing to change).

    A gate saturated at least :data:`ADVICE_SATURATED_SHARE` of the span is too small for its
    work, unless its adaptive capacity held it below its size because holds took longer than
    usual: then the resource behind it is the bound, and more slots would only queue inside it.
    """
    if use.seconds < ADVICE_MIN_SPAN or use.saturated < ADVICE_SATURATED_SHARE:
        return None
    head = (
        f"the {use.name} gate was saturated {round(use.saturated * 100)}% of {_span(use.seconds)}"
    )
    a = use.adaptive
    if a is not None and use.capacity < use.size and a.short_hold and a.long_hold:
        slower = a.short_hold / a.long_hold
        return (
            f"{head}, held to {use.capacity} of its {use.size} slots because its holds take "
            f"{slower:.1f}x their usual time: the resource behind it is the bound, not {use.setting}"
        )
    return f"{head}: raise {use.setting} to {use.size * 2}"
