"""The stack's monitoring, wired: the database probe, the metric history over the database and the
series it samples (the engine's, the database's, the feed's and the background embedder's).

:func:`open_stack` calls :func:`database_probe` and :func:`start_monitoring`; with ``monitoring``
off in the configuration no history is sampled.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import TYPE_CHECKING

import adapters

from .._core._engine_readings import engine_readings
from .._core._metric_history import MetricHistory, Readings, run_metric_history
from .._core._probe import Probe

if TYPE_CHECKING:
    from ._stack import Stack

__all__ = ["database_probe", "stack_readings", "start_monitoring"]

_log = logging.getLogger(__name__)


def database_probe(out: Stack, stack: contextlib.AsyncExitStack) -> Probe:
    """``SELECT 1`` on its own connection every half second (half a second to answer): the
    ``database`` health check, and a ``database`` event whenever it goes down or comes back."""
    ping = adapters.DatabasePing(out.db.url)
    stack.callback(ping.close)

    def changed(state: str, error: str | None) -> None:
        if state == "down":
            _log.warning("the database does not answer: %s", error)
        else:
            _log.info("the database answers again")
        out.engine.publish_nowait("database", {"state": state})

    return Probe("database", ping.ping, interval=0.5, timeout=0.5, on_change=changed)


def stack_readings(out: Stack) -> Readings:
    """The series of one sample: the engine's (:func:`engine.engine_readings`), ``db.*``
    (connections, idle, in_use; rates of queries, errors, cancelled), ``feed.*`` (clients; rates
    of delivered, frames, resyncs, closed_slow) and ``embedding.backlog``."""
    base = engine_readings(out.engine.statistics())
    gauges, counters = dict(base.gauges), dict(base.counters)
    db = out.db.statistics()
    gauges.update({"db.connections": db.connections, "db.idle": db.idle})
    gauges["db.in_use"] = db.threads_in_use
    counters.update({"db.queries": db.queries, "db.errors": db.errors})
    counters["db.cancelled"] = db.cancelled
    if out.feed is not None:
        feed = out.feed.statistics()
        gauges["feed.clients"] = feed.clients
        counters.update({"feed.delivered": feed.hub.delivered, "feed.frames": feed.hub.frames})
        counters.update({"feed.resyncs": feed.hub.resyncs, "feed.closed_slow": feed.closed_slow})
    backlog = out.backfill.statistics().backlog
    if backlog is not None:
        gauges["embedding.backlog"] = backlog
    return Readings(gauges, counters)


def start_monitoring(out: Stack) -> MetricHistory | None:
    """Start the metric history service (its minutes in the stack's database) and serve it on the
    dashboard's ``/history.json``; None (and nothing started) with ``monitoring`` off."""
    config = out.config
    if not config.monitoring:
        return None
    history = MetricHistory(
        store=adapters.PostgresMetricStore(out.db),
        retention=config.metric_retention_days * 86400.0,
        max_rows=round(config.metric_retention_days * 1440),
    )
    sample = functools.partial(run_metric_history, history, functools.partial(stack_readings, out))
    out.engine.start_service(sample, name="metric history")
    if out.dashboard is not None:
        out.dashboard.serve_history(history)
    return history
