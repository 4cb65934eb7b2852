"""Adaptive capacity: a gate's slots follow the time its holders keep them, within bounds.

A gradient limiter in the manner of Netflix's concurrency-limits (``Gradient2Limit``): holds are
judged a window at a time (:attr:`AdaptiveSettings.window` seconds and at least
:attr:`AdaptiveSettings.min_samples` holds); the window's mean hold time (short term) is set
against a slow average of the windows before it (long term). While the short term stays within
:attr:`AdaptiveSettings.tolerance` times the long term, the capacity grows by
:attr:`AdaptiveSettings.headroom` a window (smoothed); past it, it shrinks in proportion (at most
by half a window), so work queues at the gate, where priorities order it, instead of inside the
resource, where they do not. A window in which fewer than half the slots were used leaves the
capacity as it is (nothing was learnt of more). When the long term is more than twice the short
term (the load went away), it decays faster to catch up.

The capacity is set on the :class:`~engine.PriorityLimiter` itself (``limiter.capacity``), so
statistics, the metric history (``gate.<name>.capacity``) and the Prometheus gauge show it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import final

import trio

from ._errors import InvalidArgumentError
from ._limiter import PriorityLimiter

__all__ = ["AdaptiveCapacity", "AdaptiveSettings", "AdaptiveStatistics"]


@final
@dataclass(frozen=True, slots=True)
class AdaptiveSettings:
    """How an adaptive capacity moves.

    Attributes:
        minimum: the fewest slots (>= 1).
        maximum: the most slots (>= minimum; a database gate's is its pool size).
        tolerance: how many times the long-term hold time a window's may be before it counts as
            congestion (>= 1).
        window: seconds of holds judged together (> 0).
        min_samples: the fewest holds a window judges (>= 1; a window waits for them).
        smoothing: the share of a new estimate taken at once (0 < smoothing <= 1).
        long_windows: how many windows the long-term hold time averages over (>= 1).
        headroom: slots a window adds beyond the gradient's estimate, to probe for more (>= 0).
    """

    minimum: int = 1
    maximum: int = 8
    tolerance: float = 1.5
    window: float = 1.0
    min_samples: int = 10
    smoothing: float = 0.2
    long_windows: int = 100
    headroom: float = 1.0

    def __post_init__(self) -> None:
        for name in ("minimum", "maximum", "min_samples", "long_windows"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{name} must be an int >= 1, not {value!r}")
        if self.maximum < self.minimum:
            raise InvalidArgumentError(
                f"maximum ({self.maximum}) must be at least minimum ({self.minimum})"
            )
        bounds = {
            "tolerance": (self.tolerance, 1.0, False, ">= 1"),
            "window": (self.window, 0.0, True, "> 0"),
            "smoothing": (self.smoothing, 0.0, True, "in (0, 1]"),
            "headroom": (self.headroom, 0.0, False, ">= 0"),
        }
        for name, (value, low, strict, what) in bounds.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidArgumentError(f"{name} must be a number, not {value!r}")
            below = value <= low if strict else value < low
            if not math.isfinite(value) or below or (name == "smoothing" and value > 1):
                raise InvalidArgumentError(f"{name} must be {what}, not {value!r}")


@dataclass(frozen=True, slots=True)
class AdaptiveStatistics:
    """A snapshot of an :class:`AdaptiveCapacity`.

    Attributes:
        capacity: the gate's slots now.
        estimate: the unrounded capacity the gradient arrived at.
        short_hold: the last judged window's mean hold time, in seconds (None: none yet).
        long_hold: the long-term mean hold time, in seconds (None: none yet).
        windows: windows judged.
        raised: windows that raised the capacity.
        lowered: windows that lowered it.
    """

    capacity: int
    estimate: float
    short_hold: float | None
    long_hold: float | None
    windows: int
    raised: int
    lowered: int


@final
class AdaptiveCapacity:
    """Keeps a :class:`~engine.PriorityLimiter`'s capacity adapted to its hold times.

    It observes the limiter's holds (:meth:`PriorityLimiter.observe_holds`) from the moment it is
    made, sets the capacity to ``initial`` (default: ``settings.maximum``) and then moves it within
    the settings' bounds as the module describes; :meth:`close` stops it and leaves the capacity
    where it is. It needs no task of its own: it judges in the task that ends a hold, on trio's
    clock, synchronously.

    Args:
        limiter: the gate.
        settings: its bounds and pace.
        initial: the capacity to start from (clamped to the bounds).
    """

    __slots__ = (
        "_count",
        "_estimate",
        "_limiter",
        "_long",
        "_lowered",
        "_peak",
        "_raised",
        "_settings",
        "_short",
        "_started",
        "_total",
        "_windows",
    )

    def __init__(
        self, limiter: PriorityLimiter, settings: AdaptiveSettings, *, initial: int | None = None
    ) -> None:
        self._limiter = limiter
        self._settings = settings
        start = settings.maximum if initial is None else initial
        self._estimate = float(min(settings.maximum, max(settings.minimum, start)))
        self._short: float | None = None
        self._long: float | None = None
        self._started: float | None = None
        self._total = 0.0
        self._count = 0
        self._peak = 0
        self._windows = self._raised = self._lowered = 0
        limiter.capacity = int(self._estimate)
        limiter.observe_holds(self._observe)

    def __repr__(self) -> str:
        return (
            f"<AdaptiveCapacity {self._limiter.name!r} {self._limiter.capacity} in "
            f"[{self._settings.minimum}, {self._settings.maximum}]>"
        )

    @property
    def settings(self) -> AdaptiveSettings:
        """The bounds and pace."""
        return self._settings

    def close(self) -> None:
        """Stop observing the gate; its capacity stays where it is."""
        self._limiter.observe_holds(None)

    def statistics(self) -> AdaptiveStatistics:
        """A snapshot of the estimate and the hold times it follows."""
        return AdaptiveStatistics(
            capacity=self._limiter.capacity,
            estimate=self._estimate,
            short_hold=self._short,
            long_hold=self._long,
            windows=self._windows,
            raised=self._raised,
            lowered=self._lowered,
        )

    def _observe(self, held: float, in_flight: int) -> None:
        now = trio.current_time()
        if self._started is None:
            self._started = now
        self._total += held
        self._count += 1
        self._peak = max(self._peak, in_flight)
        if (
            now - self._started >= self._settings.window
            and self._count >= self._settings.min_samples
        ):
            self._judge(self._total / self._count, self._peak)
            self._started, self._total, self._count, self._peak = now, 0.0, 0, 0

    def _judge(self, short: float, peak: int) -> None:
        s = self._settings
        self._windows += 1
        self._short = short
        long = short if self._long is None else self._long + (short - self._long) / s.long_windows
        if short > 0 and long > 2 * short:
            long *= 0.95  # the load went away: catch up faster than the average would
        self._long = long
        if peak < self._estimate / 2:
            return  # the gate was not the bound: nothing learnt of more slots
        gradient = 1.0 if short <= 0 else max(0.5, min(1.0, s.tolerance * long / short))
        target = self._estimate * gradient + s.headroom
        estimate = self._estimate * (1 - s.smoothing) + target * s.smoothing
        self._estimate = min(float(s.maximum), max(float(s.minimum), estimate))
        capacity = int(self._estimate)
        before = self._limiter.capacity
        if capacity != before:
            if capacity > before:
                self._raised += 1
            else:
                self._lowered += 1
            self._limiter.capacity = capacity
