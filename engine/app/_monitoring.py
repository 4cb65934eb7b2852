"""The stack's monitoring, wired: the database probe, the metric history over the database and the
series it samples (the engine's, the database's, the feed's and the background embedder's), and
the alert rules (:mod:`._alerting`) with their webhook.

:func:`open_stack` calls :func:`database_probe` and :func:`start_monitoring`; with ``monitoring``
off in the configuration no history is sampled, no call is timed and no alert is judged.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import TYPE_CHECKING

import adapters

from .._core._alerts import Alert, AlertBook
from .._core._engine_readings import engine_readings
from .._core._latency_readings import LatencyReadings
from .._core._metric_history import MetricHistory, Readings, run_metric_history
from .._core._monitoring_switch import MonitoringSwitch
from .._core._probe import Probe
from ._alerting import AlertJudge, AlertRules
from ._cluster_settings import history_key

if TYPE_CHECKING:
    from ._stack import Stack

__all__ = ["database_probe", "stack_readings", "start_monitoring"]

_log = logging.getLogger(__name__)


def database_probe(out: Stack, stack: contextlib.AsyncExitStack) -> Probe:
    """``SELECT 1`` on its own connection every half second (half a second to answer): the
    ``database`` health check, and a ``database`` event whenever it goes down or comes back."""
    ping = adapters.DatabasePing(out.db.url)
    stack.callback(ping.close)

    was_down = False

    def changed(state: str, error: str | None) -> None:
        nonlocal was_down
        if state == "down":
            was_down = True
            _log.warning("the database does not answer: %s", error)
        elif was_down:  # not at the first answer, when nothing was down
            _log.info("the database answers again")
        out.engine.publish_nowait("database", {"state": state})

    return Probe("database", ping.ping, interval=0.5, timeout=0.5, on_change=changed)


def stack_readings(out: Stack, latencies: LatencyReadings | None = None) -> Readings:
    """The series of one sample: the engine's (:func:`engine.engine_readings`), the latencies'
    (``latency.*``, :class:`LatencyReadings`), ``db.*`` (connections, idle, in_use; rates of
    queries, errors, cancelled), ``feed.*`` (clients; rates of delivered, frames, resyncs,
    closed_slow) and ``embedding.backlog``, in one :class:`Readings` each part fills."""
    readings = engine_readings(out.engine)
    if latencies is not None:
        latencies.readings(readings)
    gauges, counters = readings.gauges, readings.counters
    db = out.db.statistics()
    gauges["db.connections"] = db.connections
    gauges["db.idle"] = db.idle
    gauges["db.in_use"] = db.threads_in_use
    counters["db.queries"] = db.queries
    counters["db.errors"] = db.errors
    counters["db.cancelled"] = db.cancelled
    if out.feed is not None:
        feed = out.feed.statistics()
        hub = feed.hub
        gauges["feed.clients"] = feed.clients
        counters["feed.delivered"] = hub.delivered
        counters["feed.frames"] = hub.frames
        counters["feed.resyncs"] = hub.resyncs
        counters["feed.closed_slow"] = feed.closed_slow
    backlog = out.backfill.statistics().backlog
    if backlog is not None:
        gauges["embedding.backlog"] = backlog
    return readings


def start_monitoring(out: Stack) -> None:
    """Start the metric history service (its minutes in the stack's database, served on the
    dashboard's ``/history.json``) with the alerts judged on its tick (``out.history``,
    ``out.alerts``), following ``out.monitoring``; with ``monitoring`` off, only switch the
    latency histograms off."""
    config = out.config
    if not config.monitoring:
        out.engine.latencies.enabled = False
        return
    switch = out.monitoring = MonitoringSwitch(out.engine.latencies)
    history = MetricHistory(
        store=adapters.PostgresMetricStore(out.db, daemon=history_key(config)),
        retention=config.metric_retention_days * 86400.0,
        max_rows=round(config.metric_retention_days * 1440),
    )
    collect = functools.partial(stack_readings, out, LatencyReadings(out.engine.latencies))
    judge = _alert_judge(out)
    sample = functools.partial(
        run_metric_history, history, collect, switch=switch, after_sample=judge.tick_nowait
    )
    out.engine.start_service(sample, name="metric history")
    if out.dashboard is not None:
        out.dashboard.serve_history(history)
    out.history = history
    out.alerts = judge.book


def _alert_judge(out: Stack) -> AlertJudge:
    config, eng = out.config, out.engine
    checks = out.health_checks
    rules = AlertRules(
        config,
        gates=eng.gates,
        latencies=eng.latencies,
        checks=(lambda: {}) if checks is None else checks,
        home=config.home,
        watches=out.watchers.totals,
    )
    webhook = None
    if config.alert_webhook_url is not None:
        webhook = adapters.Webhook(config.alert_webhook_url)
        eng.start_service(webhook.run, name="alert webhook")

    def publish(alert: Alert) -> None:
        log = _log.warning if alert.state == "firing" else _log.info
        log("alert %s %s: %s", alert.name, alert.state, alert.message)
        eng.publish_nowait("health.alert", alert.as_dict())

    book = AlertBook(clear_for=config.alert_for_seconds)
    return AlertJudge(rules, book, publish, webhook=webhook, interval=config.health_interval)
