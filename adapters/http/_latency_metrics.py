"""The engine's latency histograms for ``/metrics``: per kind of call (see
:data:`engine.LATENCY_KINDS`) a histogram ``scribe_<kind>_seconds`` and a counter
``scribe_<kind>_errors_total`` of the calls that failed, labelled by what was called."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

import engine

__all__ = ["latency_families"]

_BOUNDS = [f"{b:g}" for b in engine.LATENCY_BUCKETS] + ["+Inf"]


def latency_families(
    snapshot: Mapping[tuple[str, str], engine.HistogramSnapshot],
) -> Iterator[Metric]:
    """The families of one scrape, from :meth:`engine.Latencies.snapshot` (every known kind, with
    no sample while nothing of it was timed)."""
    histograms: dict[str, HistogramMetricFamily] = {}
    errors: dict[str, CounterMetricFamily] = {}
    for kind, (label, text) in engine.LATENCY_KINDS.items():
        labels = [] if label is None else [label]
        histograms[kind] = HistogramMetricFamily(f"scribe_{kind}_seconds", text, labels=labels)
        errors[kind] = CounterMetricFamily(
            f"scribe_{kind}_errors", f"Calls that failed ({kind}).", labels=labels
        )
    for (kind, name), h in snapshot.items():
        if kind not in histograms:
            continue
        cumulative, seen = [], 0
        for bound, count in zip(_BOUNDS, h.counts, strict=True):
            seen += count
            cumulative.append((bound, float(seen)))
        labels = [] if engine.LATENCY_KINDS[kind][0] is None else [name]
        histograms[kind].add_metric(labels, cumulative, h.total)
        errors[kind].add_metric(labels, h.errors)
    yield from histograms.values()
    yield from errors.values()
