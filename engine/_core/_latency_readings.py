"""The latency histograms as series of the metric history: per histogram ``latency.<kind>.<label>``
(``latency.<kind>`` without a label), the gauge ``.p99_ms`` (the 99th percentile of the calls since
the previous sample; absent when there was none) and the counter ``.calls`` (a rate in the
history), and for sources the counter ``.errors``."""

from __future__ import annotations

from typing import final

from ._latency import HistogramSnapshot, Latencies
from ._metric_history import Readings

__all__ = ["LatencyReadings"]


@final
class LatencyReadings:
    """Reads ``latencies`` once a sample, remembering the previous sample for the percentiles."""

    def __init__(self, latencies: Latencies) -> None:
        self._latencies = latencies
        self._previous: dict[tuple[str, str], HistogramSnapshot] = {}

    def readings(self) -> Readings:
        """The series of one sample."""
        gauges: dict[str, float] = {}
        counters: dict[str, float] = {}
        snapshot = self._latencies.snapshot()
        for (kind, label), h in snapshot.items():
            name = f"latency.{kind}.{label}" if label else f"latency.{kind}"
            counters[f"{name}.calls"] = h.calls
            if kind.endswith("_source"):
                counters[f"{name}.errors"] = h.errors
            before = self._previous.get((kind, label))
            if before is not None and before.counts == h.counts:
                continue  # no call since the previous sample
            since = h.minus(Latencies.empty() if before is None else before)
            p99 = since.quantile(0.99)
            if p99 is not None:
                gauges[f"{name}.p99_ms"] = p99 * 1000.0
        self._previous = snapshot
        return Readings(gauges, counters)
