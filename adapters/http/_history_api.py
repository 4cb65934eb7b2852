"""``/history.json``: the metric history's ranges over HTTP, for the dashboard's charts.

``GET /history.json`` lists the series the history holds now; ``GET /history.json?series=a,b&last=3600``
(or ``since=<epoch seconds>&until=<epoch seconds>``; ``points=<n>``, default 720) answers each
series' ``[start, mean, peak]`` points (see :class:`engine.HistoryRange`). The dashboard serves it
to a signed-in page only. Every parameter is bounded; a bad one gets 400 with what is wrong.
"""

from __future__ import annotations

import math
import time
import urllib.parse
from typing import Any, Final

import engine

__all__ = ["MAX_POINTS", "MAX_RANGE", "history_answer"]

#: The longest range one request may ask for, in seconds (31 days).
MAX_RANGE: Final = 31 * 86400.0
#: The most points per series one request may ask for.
MAX_POINTS: Final = 2000
_MAX_QUERY: Final = 8192


class _BadRequest(Exception):
    pass


def _number(params: dict[str, list[str]], key: str) -> float | None:
    values = params.get(key)
    if not values:
        return None
    try:
        value = float(values[-1])
    except ValueError:
        raise _BadRequest(f"{key} must be a number, not {values[-1]!r}") from None
    if not math.isfinite(value):
        raise _BadRequest(f"{key} must be a finite number")
    return value


def _window(params: dict[str, list[str]], now: float) -> tuple[float, float]:
    last, since, until = (_number(params, k) for k in ("last", "since", "until"))
    if last is not None and since is not None:
        raise _BadRequest("give last or since, not both")
    until = now if until is None else until
    if last is not None:
        if not 0 < last <= MAX_RANGE:
            raise _BadRequest(f"last must be in (0, {MAX_RANGE:g}] seconds")
        since = until - last
    since = until - 3600.0 if since is None else since
    if not 0 < until - since <= MAX_RANGE:
        raise _BadRequest(f"the range must be positive and at most {MAX_RANGE:g} seconds")
    return since, until


async def history_answer(
    history: engine.MetricHistory | None, query: bytes, now: float | None = None
) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, JSON body)`` answering ``query`` (the raw query string) from ``history``;
    ``now`` is the wall clock's (default :func:`time.time`). 503 when there is no history (it is
    off) or its store failed.

    Cancellation: the store's read is abandoned.
    """
    if history is None:
        return 503, {"error": "unavailable", "message": "the metric history is off"}
    try:
        return await _answer(history, query, time.time() if now is None else now)
    except engine.ScribeError as exc:
        return 503, {"error": "unavailable", "message": f"the history cannot be read: {exc}"}


async def _answer(
    history: engine.MetricHistory, query: bytes, now: float
) -> tuple[int, dict[str, Any]]:
    if len(query) > _MAX_QUERY:
        return 400, {"error": "bad_request", "message": "the query string is too long"}
    params = urllib.parse.parse_qs(query.decode("latin-1"))
    names = [n for v in params.get("series", ()) for n in v.split(",") if n]
    if not names:
        return 200, {"series_names": history.ring.names()}
    try:
        since, until = _window(params, now)
        points = _number(params, "points")
        if points is not None and not (1 <= points <= MAX_POINTS and points == int(points)):
            raise _BadRequest(f"points must be an integer from 1 to {MAX_POINTS}")
        wanted = engine.check_series_names(names)
    except (_BadRequest, engine.InvalidArgumentError) as exc:
        return 400, {"error": "bad_request", "message": str(exc)}
    answer = await history.range(wanted, since, until, max_points=int(points or 720))
    return 200, answer.as_dict()
