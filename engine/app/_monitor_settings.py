"""The monitoring settings (in :mod:`._config` like every setting): the metric history, the
latency histograms and the alert rules' thresholds.

- ``monitoring``: sample the metric history every second, time calls into histograms and judge
  the alert rules (default on; off for a daemon that must not spend a cycle on itself).
- ``metric_retention_days``: days the minute roll-ups of the history are kept (default 30).
- ``alert_gate_saturated_seconds``: a gate full with tasks waiting this long fires (30).
- ``alert_loop_lag_ms``: the event loop waking this late fires (250).
- ``alert_source_failure_percent``: a context or memory source failing this share of its calls
  over the last five minutes (at least ten calls) fires (50).
- ``alert_backlog_entries``: this many worklog entries carried across a database outage fires
  (100).
- ``alert_disk_percent``: the file system of the home this full fires (90).
- ``alert_watch_percent``: inotify watches in use this close to the system's limit fires (90).
- ``alert_webhook_url``: where alerts are also posted as JSON (None: nowhere); retried, bounded.

- ``db_gate_adaptive``: the database gate's capacity adapts to its query times between
  ``db_gate_min`` (default 1) and ``pool_size`` (:class:`engine.AdaptiveCapacity`; default on).
  Off: it stays at ``pool_size``.

An alert fires once its condition has held for ``alert_for_seconds`` (default 5) and resolves
once it has been clear as long.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from .._core._adaptive import AdaptiveSettings
from ._config_setting import Setting, is_http_url

__all__ = ["MONITOR_SETTINGS", "MonitorSettings", "db_gate_adaptation"]


def _percent(v: float) -> bool:
    return 0 < v <= 100


@dataclass(frozen=True, slots=True, kw_only=True)
class MonitorSettings:
    """The monitoring fields of :class:`~engine.app.AppConfig` (described in this module)."""

    monitoring: bool = True
    metric_retention_days: float = 30.0
    alert_for_seconds: float = 5.0
    alert_gate_saturated_seconds: float = 30.0
    alert_loop_lag_ms: float = 250.0
    alert_source_failure_percent: float = 50.0
    alert_backlog_entries: int = 100
    alert_disk_percent: float = 90.0
    alert_watch_percent: float = 90.0
    alert_webhook_url: str | None = None
    db_gate_adaptive: bool = True
    db_gate_min: int = 1


#: The settings table's rows for these fields.
MONITOR_SETTINGS: Final[Mapping[str, Setting]] = {
    "monitoring": Setting("bool"),
    "metric_retention_days": Setting("number", lambda v: 1 <= v <= 366, "from 1 to 366"),
    "alert_for_seconds": Setting("number", lambda v: 0 <= v <= 3600, "from 0 to 3600"),
    "alert_gate_saturated_seconds": Setting("number", lambda v: 0 < v <= 86400, "in (0, 86400]"),
    "alert_loop_lag_ms": Setting("number", lambda v: 0 < v <= 60_000, "in (0, 60000]"),
    "alert_source_failure_percent": Setting("number", _percent, "in (0, 100]"),
    "alert_backlog_entries": Setting("int", lambda v: 1 <= v <= 10**9, "from 1 to 10**9"),
    "alert_disk_percent": Setting("number", _percent, "in (0, 100]"),
    "alert_watch_percent": Setting("number", _percent, "in (0, 100]"),
    "alert_webhook_url": Setting("str", is_http_url, "(an http or https URL)", nullable=True),
    "db_gate_adaptive": Setting("bool"),
    "db_gate_min": Setting("int", lambda v: 1 <= v <= 1000, "from 1 to 1000"),
}


def db_gate_adaptation(settings: MonitorSettings, pool_size: int) -> dict[str, AdaptiveSettings]:
    """The engine's ``adaptive_gates`` for these settings: the ``db`` gate between
    ``db_gate_min`` (at most ``pool_size``) and ``pool_size``, or none."""
    if not settings.db_gate_adaptive:
        return {}
    return {"db": AdaptiveSettings(minimum=min(settings.db_gate_min, pool_size), maximum=pool_size)}
