"""The latency histograms as series of the metric history: per histogram ``latency.<kind>.<label>``
(``latency.<kind>`` without a label), the gauge ``.p99_ms`` (the 99th percentile of the calls since
the previous sample; absent when there was none) and the counter ``.calls`` (a rate in the
history), and for sources the counter ``.errors``."""

from __future__ import annotations

from typing import NamedTuple, final

from ._latency import Latencies, bucket_quantile
from ._metric_history import Readings

__all__ = ["LatencyReadings"]


class _Names(NamedTuple):
    """One histogram's series names (made once, not at every sample)."""

    calls: str
    errors: str | None
    p99: str


def _names(kind: str, label: str) -> _Names:
    name = f"latency.{kind}.{label}" if label else f"latency.{kind}"
    errors = f"{name}.errors" if kind.endswith("_source") else None
    return _Names(f"{name}.calls", errors, f"{name}.p99_ms")


@final
class LatencyReadings:
    """Reads ``latencies`` once a sample, remembering the previous sample for the percentiles
    (only a histogram with calls since then is snapshotted)."""

    def __init__(self, latencies: Latencies) -> None:
        self._latencies = latencies
        self._previous: dict[tuple[str, str], tuple[int, tuple[int, ...]]] = {}  # calls, counts
        self._names: dict[tuple[str, str], _Names] = {}

    def readings(self, into: Readings | None = None) -> Readings:
        """The series of one sample, added to ``into`` (None: a new :class:`Readings`), which is
        returned."""
        out = Readings() if into is None else into
        gauges, counters = out.gauges, out.counters
        previous = self._previous
        for key, h in self._latencies.histograms():
            names = self._names.get(key)
            if names is None:
                names = self._names[key] = _names(*key)
            calls = h.calls
            counters[names.calls] = calls
            if names.errors is not None:
                counters[names.errors] = h.errors
            before = previous.get(key)
            if before is not None and before[0] == calls:
                continue  # no call since the previous sample
            counts = h.counts()
            previous[key] = (calls, counts)
            if before is None:
                p99 = bucket_quantile(0.99, counts, calls)
            else:
                p99 = bucket_quantile(0.99, counts, calls - before[0], before[1])
            if p99 is not None:
                gauges[names.p99] = p99 * 1000.0
        return out
