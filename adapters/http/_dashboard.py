"""The dashboard: a page over HTTP (hypercorn on trio) with ``/health`` and a Prometheus ``/metrics``.

The page (``adapters/http/dashboard/``, plain HTML and JavaScript shipped as package data) connects to the
live feed and shows the session tree with states and priorities, the worklog of the selected
session, health and metrics, all updating as the feed delivers. The page gets the feed URL and a
read token from ``/config.json``: serve the dashboard only where its readers may hold that token
(it binds to 127.0.0.1 by default).

Routes: ``/`` (the page), ``/dashboard.js``, ``/dashboard.css``, ``/config.json``, ``/health``
(JSON; HTTP 503 when degraded) and ``/metrics`` (Prometheus text format, rendered by
``prometheus_client`` from :meth:`Engine.statistics` through a custom collector).
"""

from __future__ import annotations

import functools
import importlib.resources
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, Final, final

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

import engine

from ..feed._server import FeedServer

__all__ = ["Dashboard", "EngineCollector", "open_dashboard"]

_STATIC: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@final
class EngineCollector(Collector):
    """A Prometheus collector reading :meth:`Engine.statistics` (and a feed server's, if given)
    at every scrape."""

    def __init__(self, eng: engine.Engine, feed: FeedServer | None = None) -> None:
        self._eng = eng
        self._feed = feed

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Yield the metric families of one scrape."""
        stats = self._eng.statistics()
        sessions = GaugeMetricFamily("scribe_sessions", "Sessions by state.", labels=["state"])
        for state in engine.SessionState:
            sessions.add_metric([state.value], stats.sessions_by_state.get(state.value, 0))
        yield sessions
        yield GaugeMetricFamily(
            "scribe_live_sessions", "Sessions not yet final.", stats.live_sessions
        )
        yield CounterMetricFamily(
            "scribe_sessions_started", "Sessions started since the engine opened.",
            stats.sessions_started,
        )  # fmt: skip
        capacity = GaugeMetricFamily("scribe_gate_capacity", "Slots of a gate.", labels=["gate"])
        borrowed = GaugeMetricFamily("scribe_gate_borrowed", "Slots held now.", labels=["gate"])
        waiting = GaugeMetricFamily("scribe_gate_waiting", "Tasks waiting.", labels=["gate"])
        granted = CounterMetricFamily("scribe_gate_granted", "Slots handed out.", labels=["gate"])
        for name, gate in sorted(stats.gates.items()):
            capacity.add_metric([name], gate.capacity)
            borrowed.add_metric([name], gate.borrowed)
            waiting.add_metric([name], gate.waiting)
            granted.add_metric([name], gate.granted_total)
        yield from (capacity, borrowed, waiting, granted)
        yield CounterMetricFamily(
            "scribe_events_published", "Events published on the engine stream.",
            stats.events_published,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "scribe_event_subscribers", "Open subscriptions.", stats.subscribers
        )
        yield GaugeMetricFamily(
            "scribe_uptime_seconds", "Seconds since the engine opened.", stats.uptime
        )
        if self._feed is not None:
            feed = self._feed.statistics()
            yield GaugeMetricFamily("scribe_feed_clients", "Connected feed clients.", feed.clients)
            for name, value, text in (
                ("accepted", feed.accepted, "Feed connections accepted."),
                ("rejected", feed.rejected, "Feed handshakes refused."),
                ("closed_slow", feed.closed_slow, "Feed clients dropped for not reading."),
                ("closed_dead", feed.closed_dead, "Feed clients dropped for not answering pings."),
                ("rate_limited", feed.rate_limited, "Feed commands refused by the rate limit."),
                ("events_delivered", feed.hub.delivered, "Feed events sent to clients."),
                ("frames", feed.hub.frames, "Feed frames sent."),
                ("conflated", feed.hub.conflated, "State values replaced before sending."),
                ("resyncs", feed.hub.resyncs, "Clients told to resync."),
            ):
                yield CounterMetricFamily(f"scribe_feed_{name}", text, value)


@final
class Dashboard(metaclass=engine.NoPublicConstructor):
    """A running dashboard; get one from :func:`open_dashboard`."""

    def __init__(
        self,
        eng: engine.Engine,
        feed_url: str,
        token: str,
        feed: FeedServer | None,
    ) -> None:
        self._eng = eng
        self._config = orjson.dumps({"feed_url": feed_url, "token": token})
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(EngineCollector(eng, feed))
        self._monitor = engine.HealthMonitor()
        self._files: dict[str, bytes] = {}
        self.host = ""
        self.port = 0

    @property
    def url(self) -> str:
        """The page's URL."""
        return f"http://{self.host}:{self.port}/"

    def _static(self, name: str) -> bytes:
        data = self._files.get(name)
        if data is None:
            data = (
                importlib.resources.files("adapters.http").joinpath("dashboard", name).read_bytes()
            )
            self._files[name] = data
        return data

    def health(self) -> dict[str, Any]:
        """The current health payload (as on the ``health`` topic)."""
        sample = self._monitor.sample(self._eng.statistics(), now=time.monotonic())
        return sample.health

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI application."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", "text/plain; charset=utf-8")
        elif path in _STATIC:
            name, content_type = _STATIC[path]
            await _respond(send, 200, self._static(name), content_type)
        elif path == "/config.json":
            await _respond(send, 200, self._config, "application/json")
        elif path == "/health":
            health = self.health()
            status = 200 if health["status"] == "ok" else 503
            await _respond(send, status, orjson.dumps(health), "application/json")
        elif path == "/metrics":
            await _respond(send, 200, generate_latest(self._registry), CONTENT_TYPE_LATEST)
        else:
            await _respond(send, 404, b"not found\n", "text/plain; charset=utf-8")


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def open_dashboard(
    eng: engine.Engine,
    *,
    feed_url: str,
    token: str,
    host: str = "127.0.0.1",
    port: int = 0,
    feed: FeedServer | None = None,
) -> AsyncIterator[Dashboard]:
    """Serve the dashboard over HTTP for the duration of the block.

    Args:
        eng: the engine whose statistics ``/health`` and ``/metrics`` show.
        feed_url: the live feed's websocket URL the page connects to.
        token: a feed token the page uses (give it read scopes only).
        host: interface to bind.
        port: TCP port; 0 picks a free one (read it from ``dashboard.port``).
        feed: a feed server whose counters ``/metrics`` shows too.

    Entering waits until the server listens. Leaving (or cancellation) stops it, giving open
    requests at most one second.
    """
    dashboard = Dashboard._create(eng, feed_url, token, feed)
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    config.loglevel = "WARNING"
    config.graceful_timeout = 1.0
    stop = trio.Event()
    app: Any = dashboard  # a plain ASGI callable; hypercorn's typing wants its own scope types
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            functools.partial(serve, app, config, shutdown_trigger=stop.wait, mode="asgi")
        )
        address = binds[0].rsplit("//", 1)[-1]
        dashboard.host = host
        dashboard.port = int(address.rsplit(":", 1)[1])
        try:
            yield dashboard
        finally:
            stop.set()
            nursery.cancel_scope.deadline = trio.current_time() + 2.0
