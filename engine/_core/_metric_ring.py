"""Metric history in memory: a bounded ring of per-second samples and their one-minute roll-ups.

No trio and no I/O: :class:`MetricRing` keeps the last ``capacity`` samples (each a wall-clock time
and a value per series), closes a :class:`MinuteRollup` (each series' mean and peak) whenever a
sample starts a new minute, and answers ranges, downsampled to a bounded number of points. The
sampler service (:mod:`._metric_history`) feeds it; a :class:`~engine.MetricStore` keeps the
roll-ups for longer.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, final

from ._errors import InvalidArgumentError

__all__ = [
    "MAX_SERIES_NAME",
    "MAX_SERIES_PER_QUERY",
    "HistoryPoint",
    "MetricRing",
    "MetricRingStatistics",
    "MinuteRollup",
    "check_series_name",
    "check_series_names",
]

#: The longest series name kept (longer ones are dropped and counted).
MAX_SERIES_NAME: Final = 120
#: The most series one range query may ask for.
MAX_SERIES_PER_QUERY: Final = 64
#: Seconds in one roll-up.
MINUTE: Final = 60.0

#: ``(time, mean, peak)``: one point of a range (time: the start of the span it covers).
HistoryPoint = tuple[float, float, float]


def check_series_name(name: object) -> str:
    """``name`` if it can name a series (1 to :data:`MAX_SERIES_NAME` printable ASCII characters,
    no spaces); else :class:`InvalidArgumentError`."""
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= MAX_SERIES_NAME
        or not all(33 <= ord(c) < 127 for c in name)
    ):
        raise InvalidArgumentError(
            f"a series name is 1 to {MAX_SERIES_NAME} printable ASCII characters without spaces,"
            f" not {name!r}"
        )
    return name


def check_series_names(names: Collection[str]) -> list[str]:
    """``names`` checked (:func:`check_series_name`), sorted and without repeats; at most
    :data:`MAX_SERIES_PER_QUERY` of them, else :class:`InvalidArgumentError`."""
    if isinstance(names, str):
        raise InvalidArgumentError("series names come as a collection, not one string")
    wanted = sorted({check_series_name(n) for n in names})
    if len(wanted) > MAX_SERIES_PER_QUERY:
        raise InvalidArgumentError(
            f"at most {MAX_SERIES_PER_QUERY} series at once, not {len(wanted)}"
        )
    return wanted


@final
@dataclass(frozen=True, slots=True)
class MinuteRollup:
    """One minute of samples, rolled up.

    Attributes:
        minute: the minute's start (wall-clock seconds since the epoch, a multiple of 60).
        series: each series' ``(mean, peak)`` over the minute's samples that had it.
        samples: how many samples the minute holds.
    """

    minute: float
    series: Mapping[str, tuple[float, float]]
    samples: int


@final
@dataclass(frozen=True, slots=True)
class MetricRingStatistics:
    """A snapshot of a :class:`MetricRing`.

    Attributes:
        samples: samples held now.
        capacity: the most samples held (older ones are dropped).
        series: distinct series names held now.
        max_series: the most series names one sample may carry.
        dropped_values: values dropped since creation (a name too long, a series past
            ``max_series``, a value that is not a finite number).
        minutes_closed: roll-ups closed since creation.
    """

    samples: int
    capacity: int
    series: int
    max_series: int
    dropped_values: int
    minutes_closed: int


def _rollup(minute: float, samples: Iterable[Mapping[str, float]]) -> MinuteRollup:
    total: dict[str, float] = {}
    count: dict[str, int] = {}
    peak: dict[str, float] = {}
    n = 0
    for values in samples:
        n += 1
        for name, value in values.items():
            if name in total:
                total[name] += value
                count[name] += 1
                if value > peak[name]:
                    peak[name] = value
            else:
                total[name], count[name], peak[name] = value, 1, value
    series = {name: (total[name] / count[name], peak[name]) for name in sorted(total)}
    return MinuteRollup(minute, series, n)


@final
class MetricRing:
    """The last ``capacity`` samples and the minute being filled.

    Args:
        capacity: samples kept (at one a second, 3600 is the last hour).
        max_series: the most series one sample may carry; values past it are dropped.

    Not thread-safe: call it from one thread (the trio thread).
    """

    def __init__(self, capacity: int = 3600, *, max_series: int = 128) -> None:
        for what, value in (("capacity", capacity), ("max_series", max_series)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
                raise InvalidArgumentError(f"{what} must be an int from 1 to 100000, not {value!r}")
        self._capacity = capacity
        self._max_series = max_series
        self._samples: deque[tuple[float, dict[str, float]]] = deque(maxlen=capacity)
        self._open: float | None = None  # the minute being filled
        self._dropped = 0
        self._closed = 0
        self._known: set[str] = set()

    def record_nowait(
        self, at: float, values: Mapping[str, float], *, keep: bool = False
    ) -> MinuteRollup | None:
        """Add the sample taken at ``at`` (wall-clock seconds); return the minute it closed (None:
        it falls in the open minute). A sample older than the last one is dropped as a whole.

        ``keep``: ``values`` is a dict the caller made for this sample and leaves alone from now
        on, so the ring keeps it as it is when every value passes, instead of a copy."""
        if not math.isfinite(at) or (self._samples and at < self._samples[-1][0]):
            self._dropped += len(values)
            return None
        if self._fits(values):
            kept = values if keep and type(values) is dict else dict(values)
        else:
            kept = self._filtered(values)
        minute = math.floor(at / MINUTE) * MINUTE
        closed = None
        if self._open is not None and self._open != minute:
            closed = self._minute(self._open)
            self._closed += 1
        self._open = minute
        self._samples.append((at, kept))
        return closed

    def _minute(self, minute: float) -> MinuteRollup:
        """The roll-up of the samples held from ``minute`` on (rolled up when the minute closes or
        is asked for, not at every sample; a ring shorter than a minute rolls up what it holds)."""
        picked: list[Mapping[str, float]] = []
        for at, values in reversed(self._samples):
            if at < minute:
                break
            if at < minute + MINUTE:
                picked.append(values)
        picked.reverse()
        return _rollup(minute, picked)

    def _fits(self, values: Mapping[str, float]) -> bool:
        """Whether every name is known good and every value a finite number (the usual case,
        checked without a loop in Python)."""
        if len(values) > self._max_series or not self._known.issuperset(values):
            return False
        try:
            return math.isfinite(math.fsum(values.values()))
        except (TypeError, ValueError, OverflowError):
            return False

    def _filtered(self, values: Mapping[str, float]) -> dict[str, float]:
        kept: dict[str, float] = {}
        for name, value in values.items():
            if (
                len(kept) >= self._max_series
                or not isinstance(name, str)
                or not 0 < len(name) <= MAX_SERIES_NAME
                or isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                self._dropped += 1
                continue
            kept[name] = float(value)
            if len(self._known) < 4 * self._max_series:
                self._known.add(name)
        return kept

    def open_minute(self) -> MinuteRollup | None:
        """The minute being filled, rolled up so far (None: no sample yet)."""
        return None if self._open is None else self._minute(self._open)

    def names(self) -> list[str]:
        """The series of the newest sample, sorted."""
        return sorted(self._samples[-1][1]) if self._samples else []

    @property
    def oldest(self) -> float | None:
        """When the oldest sample held was taken (None: none)."""
        return self._samples[0][0] if self._samples else None

    def range(
        self, names: Collection[str], since: float, until: float, *, max_points: int = 720
    ) -> dict[str, list[HistoryPoint]]:
        """The samples of ``names`` taken in ``[since, until)``, at most ``max_points`` per series
        (consecutive samples merged into ``(start, mean, peak)`` when there are more)."""
        if not since < until or max_points < 1:
            return {name: [] for name in names}
        step = max(1.0, math.ceil((until - since) / max_points))
        picked = [(at, values) for at, values in self._samples if since <= at < until]
        return {
            name: merge_points(
                ((at, values[name], values[name]) for at, values in picked if name in values),
                since,
                step,
            )
            for name in names
        }

    def statistics(self) -> MetricRingStatistics:
        """A snapshot of its counters."""
        names: set[str] = set()
        for _, values in self._samples:
            names.update(values)
        return MetricRingStatistics(
            samples=len(self._samples),
            capacity=self._capacity,
            series=len(names),
            max_series=self._max_series,
            dropped_values=self._dropped,
            minutes_closed=self._closed,
        )


def merge_points(points: Iterable[HistoryPoint], origin: float, step: float) -> list[HistoryPoint]:
    """Points in time order merged into spans of ``step`` seconds counted from ``origin``: each
    span's start, the mean of its means and the peak of its peaks."""
    out: list[HistoryPoint] = []
    bucket: float | None = None
    total = peak = 0.0
    count = 0
    for at, mean, top in points:
        start = origin + math.floor((at - origin) / step) * step
        if bucket is not None and start != bucket:
            out.append((bucket, total / count, peak))
            bucket = None
        if bucket is None:
            bucket, total, peak, count = start, 0.0, top, 0
        total += mean
        peak = max(peak, top)
        count += 1
    if bucket is not None:
        out.append((bucket, total / count, peak))
    return out


def rollup_points(
    minutes: Sequence[MinuteRollup], names: Collection[str], since: float, step: float
) -> dict[str, list[HistoryPoint]]:
    """The points of ``names`` in roll-ups (in time order), merged into spans of ``step`` seconds."""
    return {
        name: merge_points(
            ((m.minute, *m.series[name]) for m in minutes if name in m.series), since, step
        )
        for name in names
    }
