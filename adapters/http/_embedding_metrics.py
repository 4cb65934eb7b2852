"""The background embedder's figures for ``/metrics``: its backlog (a gauge) and what it stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..postgres._embedding_backfill import BackfillStatistics

__all__ = ["EmbeddingCollector"]


@final
class EmbeddingCollector(Collector):
    """A Prometheus collector reading a :class:`adapters.EmbeddingBackfill`'s statistics at every
    scrape: ``scribe_embedding_backlog`` (rows awaiting a vector of the current model),
    ``scribe_embedding_embedded`` (rows embedded in the background), ``scribe_embedding_errors``
    (failed batches) and ``scribe_embedding_available`` (1 when vectors are in use)."""

    def __init__(self, statistics: Callable[[], BackfillStatistics]) -> None:
        self._statistics = statistics

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Yield the metric families of one scrape."""
        stats = self._statistics()
        model = stats.model or "none"
        backlog = GaugeMetricFamily(
            "scribe_embedding_backlog",
            "Memory rows awaiting a vector of the current model.",
            labels=["model"],
        )
        backlog.add_metric([model], stats.backlog or 0)
        embedded = CounterMetricFamily(
            "scribe_embedding_embedded",
            "Memory rows embedded in the background.",
            labels=["model"],
        )
        embedded.add_metric([model], stats.embedded)
        errors = CounterMetricFamily(
            "scribe_embedding_errors", "Background embedding batches that failed.", labels=["model"]
        )
        errors.add_metric([model], stats.errors)
        available = GaugeMetricFamily(
            "scribe_embedding_available",
            "1 when memory rows get vectors (pgvector and an embedder).",
            labels=["model"],
        )
        available.add_metric([model], 0 if stats.state == "unavailable" else 1)
        yield from (backlog, embedded, errors, available)
