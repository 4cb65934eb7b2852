"""Metric history in memory: a bounded ring of per-second samples and their one-minute roll-ups.

No trio and no I/O: :class:`MetricRing` keeps the last ``capacity`` samples (each a wall-clock time
and a value per series), closes a :class:`MinuteRollup` (each series' mean and peak) whenever a
sample starts a new minute, and answers ranges, downsampled to a bounded number of points. The
sampler service (:mod:`._metric_history`) feeds it; a :class:`~engine.MetricStore` keeps the
roll-ups for longer.
"""

from __future__ import annotations

import bisect
import math
from array import array
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
        max_series: the most series held.
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


_MISSING: Final = math.nan


@final
class MetricRing:
    """The last ``capacity`` samples and the minute being filled.

    Held by column: one array of floats per series, a slot per sample (NaN where that sample had
    no value), and one of the samples' times; a sample adds no object to the heap, and an hour of
    100 series takes under 3 MB.

    Args:
        capacity: samples kept (at one a second, 3600 is the last hour).
        max_series: the most series held; a value of a further series is dropped (a series none
            of the held samples has a value for any more makes room).

    Not thread-safe: call it from one thread (the trio thread).
    """

    def __init__(self, capacity: int = 3600, *, max_series: int = 256) -> None:
        for what, value in (("capacity", capacity), ("max_series", max_series)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
                raise InvalidArgumentError(f"{what} must be an int from 1 to 100000, not {value!r}")
        self._capacity = capacity
        self._max_series = max_series
        self._times = array("d", [_MISSING]) * capacity
        self._columns: dict[str, array[float]] = {}
        self._next = 0  # the slot the next sample goes in
        self._held = 0  # samples held (the oldest at slot _next - _held)
        self._open: float | None = None  # the minute being filled
        self._dropped = 0
        self._closed = 0

    def record_nowait(self, at: float, values: Mapping[str, float]) -> MinuteRollup | None:
        """Add the sample taken at ``at`` (wall-clock seconds); return the minute it closed (None:
        it falls in the open minute). A sample older than the last one is dropped as a whole, and
        so is a value that is not a finite number or whose name is not 1 to
        :data:`MAX_SERIES_NAME` characters."""
        if not math.isfinite(at) or (self._held and at < self._times[self._next - 1]):
            self._dropped += len(values)
            return None
        minute = math.floor(at / MINUTE) * MINUTE
        closed = None
        if self._open is not None and self._open != minute:
            closed = self._minute(self._open)
            self._closed += 1
        self._open = minute
        slot = self._next
        self._times[slot] = at
        columns = self._columns
        if not columns.keys() >= values.keys():  # a new series (checked without a loop in Python)
            self._make_room(len(values.keys() - columns.keys()))
        written = 0
        fits = self._fits(values)
        for name, value in values.items():
            column = columns.get(name)
            if not fits and not _valid(value):
                self._dropped += 1
                if column is not None:
                    column[slot] = _MISSING
                continue
            if column is None:
                column = self._column(name)
                if column is None:
                    continue
            column[slot] = value
            written += 1
        if written < len(columns):  # a series this sample has no value for
            for name, column in columns.items():
                if name not in values:
                    column[slot] = _MISSING
        self._next = (slot + 1) % self._capacity
        self._held = min(self._held + 1, self._capacity)
        return closed

    def _fits(self, values: Mapping[str, float]) -> bool:
        """Whether every value is a finite number (the usual case, checked without a loop in
        Python)."""
        try:
            return math.isfinite(math.fsum(values.values()))
        except (TypeError, ValueError, OverflowError):
            return False

    def _make_room(self, wanted: int) -> None:
        """Drop the series no held sample has a value for any more while ``wanted`` new ones
        would not fit (the slot the next sample overwrites does not count)."""
        columns = self._columns
        if len(columns) + wanted <= self._max_series:
            return
        held = self._slots(1 if self._held == self._capacity else 0)
        for old in [n for n, c in columns.items() if all(c[i] != c[i] for i in held)]:
            del columns[old]  # only NaN left (NaN is not NaN)

    def _column(self, name: object) -> array[float] | None:
        """A new series' column (None: its name is not one, or no room is left; counted)."""
        if not isinstance(name, str) or not 0 < len(name) <= MAX_SERIES_NAME:
            self._dropped += 1
            return None
        if len(self._columns) >= self._max_series:
            self._dropped += 1
            return None
        column = self._columns[name] = array("d", [_MISSING]) * self._capacity
        return column

    def _slots(self, first: int = 0) -> range | list[int]:
        """The slots of the held samples from the ``first`` oldest on, oldest first."""
        start = (self._next - self._held + first) % self._capacity
        count = self._held - first
        if start + count <= self._capacity:
            return range(start, start + count)
        return [*range(start, self._capacity), *range(0, start + count - self._capacity)]

    def _since(self, at: float) -> int:
        """How many of the held samples, oldest first, were taken before ``at``."""
        times, cap, start = self._times, self._capacity, self._next - self._held
        return bisect.bisect_left(range(self._held), at, key=lambda k: times[(start + k) % cap])

    def _minute(self, minute: float) -> MinuteRollup:
        """The roll-up of the samples held from ``minute`` on (rolled up when the minute closes or
        is asked for, not at every sample; a ring shorter than a minute rolls up what it holds)."""
        first = self._since(minute)
        slots = [i for i in self._slots(first) if self._times[i] < minute + MINUTE]
        series: dict[str, tuple[float, float]] = {}
        for name in sorted(self._columns):
            column = self._columns[name]
            found = [v for v in map(column.__getitem__, slots) if v == v]  # NaN is not NaN
            if found:
                series[name] = (math.fsum(found) / len(found), max(found))
        return MinuteRollup(minute, series, len(slots))

    def open_minute(self) -> MinuteRollup | None:
        """The minute being filled, rolled up so far (None: no sample yet)."""
        return None if self._open is None else self._minute(self._open)

    def names(self) -> list[str]:
        """The series of the newest sample, sorted."""
        if not self._held:
            return []
        newest = (self._next - 1) % self._capacity
        return sorted(n for n, column in self._columns.items() if column[newest] == column[newest])

    @property
    def oldest(self) -> float | None:
        """When the oldest sample held was taken (None: none)."""
        return self._times[(self._next - self._held) % self._capacity] if self._held else None

    def range(
        self, names: Collection[str], since: float, until: float, *, max_points: int = 720
    ) -> dict[str, list[HistoryPoint]]:
        """The samples of ``names`` taken in ``[since, until)``, at most ``max_points`` per series
        (consecutive samples merged into ``(start, mean, peak)`` when there are more)."""
        if not since < until or max_points < 1:
            return {name: [] for name in names}
        step = max(1.0, math.ceil((until - since) / max_points))
        times = self._times
        slots = [i for i in self._slots(self._since(since)) if times[i] < until]
        out: dict[str, list[HistoryPoint]] = {}
        for name in names:
            column = self._columns.get(name)
            if column is None:
                out[name] = []
                continue
            points = ((times[i], column[i], column[i]) for i in slots if column[i] == column[i])
            out[name] = merge_points(points, since, step)
        return out

    def statistics(self) -> MetricRingStatistics:
        """A snapshot of its counters."""
        held = self._slots()
        series = sum(1 for c in self._columns.values() if any(c[i] == c[i] for i in held))
        return MetricRingStatistics(
            samples=self._held,
            capacity=self._capacity,
            series=series,
            max_series=self._max_series,
            dropped_values=self._dropped,
            minutes_closed=self._closed,
        )


def _valid(value: object) -> bool:
    """Whether ``value`` can be held: a finite number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int past the floats
        return False


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
