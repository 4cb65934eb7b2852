"""Latency histograms: how long calls take, by kind and label, with fixed buckets, on trio's clock.

:class:`Latencies` keeps one :class:`LatencyHistogram` per ``(kind, label)`` (a kind of call, one
of :data:`LATENCY_KINDS`, and what it called: a gate, a source, a control operation), bounded in
labels. The engine owns one (:attr:`Engine.latencies`) and makes it current for every task of its
tree (:func:`current_latencies`), so code deep in a call (a fan-out of sources) records without
being handed it. Snapshots are frozen (:class:`HistogramSnapshot`) and give quantiles the way
Prometheus' ``histogram_quantile`` does (linear within a bucket). No I/O; reading the clock is the
only trio call.
"""

from __future__ import annotations

import bisect
import contextvars
import operator
from collections.abc import ItemsView, Sequence
from types import TracebackType
from typing import Final, NamedTuple, final

import trio

__all__ = [
    "LATENCY_BUCKETS",
    "LATENCY_KINDS",
    "HistogramSnapshot",
    "Latencies",
    "LatencyHistogram",
    "bucket_quantile",
    "current_latencies",
    "record_latency",
]

#: Upper bounds of the buckets, in seconds (a last, unbounded bucket follows).
LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

_FIRST: Final = LATENCY_BUCKETS[0]
_bisect: Final = bisect.bisect_left

#: The kinds of call timed, each with what its label names (None: it has none; label "") and
#: what it measures.
LATENCY_KINDS: Final[dict[str, tuple[str | None, str]]] = {
    "gate_wait": ("gate", "Seconds a task waited for a slot of a gate."),
    "gate_hold": ("gate", "Seconds a slot of a gate was held (a database call, a git process)."),
    "context_source": ("source", "Seconds a context source took (errors and timeouts too)."),
    "memory_source": ("source", "Seconds a memory source took while rehydrating."),
    "rehydrate": (None, "Seconds a whole rehydration took."),
    "feed_send": (None, "Seconds one frame took to reach a feed client's socket."),
    "control": ("op", "Seconds a control call took (hooks, MCP tools, the CLI)."),
}

#: The label every label past a kind's bound is counted under.
OTHER: Final = "(other)"


class HistogramSnapshot(NamedTuple):
    """A histogram at one moment (a named tuple: cheap to make once a second per histogram).

    Attributes:
        counts: calls per bucket of :data:`LATENCY_BUCKETS`, then the unbounded one (not
            cumulative).
        total: the seconds of every call added up.
        errors: calls that failed (raised or ran out of time).
    """

    counts: tuple[int, ...]
    total: float
    errors: int

    @property
    def calls(self) -> int:
        """Calls observed."""
        return sum(self.counts)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile in seconds (None: no call): linear within its bucket; the top
        bucket's lower bound when it falls there."""
        return bucket_quantile(q, self.counts, self.calls)

    def minus(self, earlier: HistogramSnapshot) -> HistogramSnapshot:
        """The calls observed since ``earlier`` (a snapshot of the same histogram)."""
        return HistogramSnapshot(
            tuple(map(operator.sub, self.counts, earlier.counts)),
            self.total - earlier.total,
            self.errors - earlier.errors,
        )


def bucket_quantile(
    q: float, counts: Sequence[int], calls: int, before: Sequence[int] | None = None
) -> float | None:
    """The ``q`` quantile in seconds of ``calls`` calls counted by bucket in ``counts`` (those of
    :data:`LATENCY_BUCKETS`, then the unbounded one), less the counts ``before`` when given (the
    same histogram earlier, ``calls`` then being the calls since), as
    :meth:`HistogramSnapshot.quantile` gives it (None: no call)."""
    if calls <= 0:
        return None
    rank = min(max(q, 0.0), 1.0) * calls
    seen = 0
    for i, c in enumerate(counts):
        if before is not None:
            c -= before[i]
        if c and seen + c >= rank:
            if i == len(LATENCY_BUCKETS):
                return LATENCY_BUCKETS[-1]
            low = 0.0 if i == 0 else LATENCY_BUCKETS[i - 1]
            return low + (LATENCY_BUCKETS[i] - low) * max(0.0, rank - seen) / c
        seen += c
    return LATENCY_BUCKETS[-1]


_EMPTY: Final = HistogramSnapshot((0,) * (len(LATENCY_BUCKETS) + 1), 0.0, 0)


@final
class LatencyHistogram:
    """Counts of calls by duration. Get one from :meth:`Latencies.histogram`."""

    __slots__ = ("_calls", "_counts", "_errors", "_owner", "_total")

    def __init__(self, owner: Latencies) -> None:
        self._owner = owner
        self._counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self._calls = 0
        self._total = 0.0
        self._errors = 0

    @property
    def calls(self) -> int:
        """Calls observed (without a snapshot)."""
        return self._calls

    @property
    def errors(self) -> int:
        """Calls observed that failed (without a snapshot)."""
        return self._errors

    def observe(self, seconds: float, *, ok: bool = True) -> None:
        """Count one call of ``seconds`` (``ok`` False: it failed). Nothing while the owner is
        disabled."""
        if not self._owner.enabled:
            return
        self._calls += 1
        if seconds <= _FIRST:  # most calls: no search
            self._counts[0] += 1
            if seconds > 0.0:
                self._total += seconds
        else:
            self._counts[_bisect(LATENCY_BUCKETS, seconds)] += 1
            self._total += seconds
        if not ok:
            self._errors += 1

    def snapshot(self) -> HistogramSnapshot:
        """Its counts now."""
        return HistogramSnapshot(tuple(self._counts), self._total, self._errors)

    def counts(self) -> tuple[int, ...]:
        """Its calls per bucket now (as :attr:`HistogramSnapshot.counts`), without a snapshot."""
        return tuple(self._counts)


@final
class Latencies:
    """Histograms by ``(kind, label)``.

    Args:
        max_labels: labels kept per kind; later ones are counted under ``(other)``.
        enabled: False: nothing is observed (see :attr:`enabled`).

    Attributes:
        enabled: whether histograms count (set False to switch timing off at run time).
    """

    def __init__(self, *, max_labels: int = 64, enabled: bool = True) -> None:
        self.enabled = enabled
        self._max_labels = max_labels
        self._histograms: dict[tuple[str, str], LatencyHistogram] = {}
        self._labels: dict[str, int] = {}

    def histogram(self, kind: str, label: str = "") -> LatencyHistogram:
        """The histogram of ``kind`` calls of ``label`` (made on first use)."""
        key = (kind, label)
        found = self._histograms.get(key)
        if found is not None:
            return found
        if self._labels.get(kind, 0) >= self._max_labels:
            key = (kind, OTHER)
            found = self._histograms.get(key)
            if found is not None:
                return found
        self._labels[kind] = self._labels.get(kind, 0) + 1
        made = self._histograms[key] = LatencyHistogram(self)
        return made

    def time(self, kind: str, label: str = "") -> _Timed:
        """A context manager timing its block on trio's clock into ``(kind, label)``; an
        exception counts as an error (a cancellation too, as the call did not complete)."""
        return _Timed(self, kind, label)

    def snapshot(self) -> dict[tuple[str, str], HistogramSnapshot]:
        """Every histogram's counts now, by ``(kind, label)`` (in the order they were made)."""
        return {key: h.snapshot() for key, h in self._histograms.items()}

    def histograms(self) -> ItemsView[tuple[str, str], LatencyHistogram]:
        """Every histogram, live, by ``(kind, label)`` (in the order they were made): to read
        their :attr:`~LatencyHistogram.calls` without a snapshot of each."""
        return self._histograms.items()

    @staticmethod
    def empty() -> HistogramSnapshot:
        """A snapshot of no call (to subtract from)."""
        return _EMPTY


@final
class _Timed:
    """The block :meth:`Latencies.time` times (a class, cheaper to enter than a generator)."""

    __slots__ = ("_kind", "_label", "_latencies", "_start")

    def __init__(self, latencies: Latencies, kind: str, label: str) -> None:
        self._latencies = latencies
        self._kind = kind
        self._label = label
        self._start: float | None = None

    def __enter__(self) -> None:
        if self._latencies.enabled:
            self._start = trio.current_time()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._start is not None:
            elapsed = trio.current_time() - self._start
            self._latencies.histogram(self._kind, self._label).observe(elapsed, ok=kind is None)


_current: contextvars.ContextVar[Latencies | None] = contextvars.ContextVar(
    "scribe_latencies", default=None
)


def current_latencies() -> Latencies | None:
    """The histograms of the engine whose tree the running task belongs to (None: no engine)."""
    return _current.get()


def record_latency(kind: str, label: str, seconds: float, *, ok: bool = True) -> None:
    """Count one call in the current engine's histograms (nothing outside an engine's tree)."""
    latencies = _current.get()
    if latencies is not None:
        latencies.histogram(kind, label).observe(seconds, ok=ok)
