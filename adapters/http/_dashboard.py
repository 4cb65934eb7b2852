"""The dashboard: a page over HTTP (hypercorn on trio) with ``/health`` and a Prometheus ``/metrics``.

The page (``adapters/http/dashboard/``, plain HTML and JavaScript shipped as package data, with the
chart library vendored under ``vendor/``) connects to the live feed and shows the session tree with
states, priorities, tags and repositories (filtered by each), the selected session's worklog as
readable lines, its summary and its context by role, a memory search (recall and rehydrate, with
citations), health, alerts, gates and metrics, and charts of the metric history over the last hour
or day, updating as the feed delivers.

Only the owner reads (:mod:`._login`): the page gets the feed URL and a short-lived read token from
``/config.json``, which needs the session cookie a one-time link (:meth:`Dashboard.login_url`) was
exchanged for; without it, 401. Every request must name an allowed host (:mod:`._access`, against
DNS rebinding): a missing ``Host`` gets 400, another one 403.

Routes: ``/mcp`` (the MCP endpoint the daemon mounts with :meth:`Dashboard.serve_mcp`; it checks
its own bearer tokens), ``/`` (the page, with a content security policy allowing only its own
files; ``/?token=...`` signs in and redirects to ``/``), its files (``/dom.js``, ``/entries.js``,
``/charts.js``, ``/dashboard.js``, ``/dashboard.css``, ``/vendor/uPlot.iife.min.js``,
``/vendor/uPlot.min.css``, ``/vendor/LICENSE``), ``/config.json`` and ``/history.json`` (signed in
only; the metric history, :mod:`._history_api`, once :meth:`Dashboard.serve_history` gave it), the
signed-in JSON routes over the control operations (``/sessions.json``, ``/summary.json``,
``/context.json``, ``/worklog.json``, ``/recall.json``, ``/rehydrate.json``: :mod:`._control_api`,
once :meth:`Dashboard.serve_control` gave the operations), ``/health`` (JSON; HTTP 503 when
degraded) and ``/metrics`` (Prometheus text format, rendered by ``prometheus_client`` from
:meth:`Engine.statistics` through a custom collector). ``/health`` and ``/metrics`` need no cookie
and show counts and the engine's gate names only: no session name, note, path or token.
"""

from __future__ import annotations

import functools
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, final

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import engine

from ..feed._server import FeedServer
from ..feed._tokens import FeedScopes, make_token
from ._access import HostAllowlist, url_host
from ._control_api import CONTROL_ROUTES, ControlCall, control_answer
from ._dashboard_files import PAGE_CSP, PAGE_FILES, PageFiles
from ._history_api import history_answer
from ._latency_metrics import latency_families
from ._login import MAX_SECRET_LENGTH, Logins, parse_cookies

__all__ = ["Dashboard", "EngineCollector", "open_dashboard"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

#: Seconds a feed token handed to a signed-in page stays valid (the page fetches a new one when
#: its connection closes).
FEED_TOKEN_TTL: Final = 3600.0
_TEXT: Final = "text/plain; charset=utf-8"
_UNAUTHORIZED: Final = orjson.dumps(
    {
        "error": "unauthorized",
        "message": "not signed in: open the link `scribe dashboard-url` prints",
    }
)
_LINK_SPENT: Final = (
    b"This dashboard link was used already or has expired.\n"
    b"Run `scribe dashboard-url` for a new one.\n"
)


@final
class EngineCollector(Collector):
    """A Prometheus collector reading :meth:`Engine.statistics` (and a feed server's, if given)
    at every scrape."""

    def __init__(self, eng: engine.Engine, feed: FeedServer | None = None) -> None:
        self._eng = eng
        self._feed = feed

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families of one scrape."""
        yield from latency_families(self._eng.latencies.snapshot())
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
        secret: str | bytes,
        feed: FeedServer | None,
        hosts: HostAllowlist,
        health_checks: engine.HealthChecks | None = None,
        collectors: Sequence[Collector] = (),
    ) -> None:
        self._eng = eng
        self._feed_url = feed_url
        self._secret = secret
        self._hosts = hosts
        self._logins = Logins()
        self._health_checks = health_checks
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(EngineCollector(eng, feed))
        for collector in collectors:
            self._registry.register(collector)
        self._monitor = engine.HealthMonitor()
        self._files = PageFiles()
        self._mcp: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None
        self._history: engine.MetricHistory | None = None
        self._control: ControlCall | None = None
        self.host = ""
        self.port = 0

    @property
    def url(self) -> str:
        """The page's URL (without a token: a browser that is not signed in gets no data)."""
        return f"http://{url_host(self.host)}:{self.port}/"

    @property
    def hosts(self) -> HostAllowlist:
        """The host names it answers to."""
        return self._hosts

    def serve_mcp(self, endpoint: Callable[[Scope, Receive, Send], Awaitable[None]] | None) -> None:
        """Route ``/mcp`` to ``endpoint`` (an ASGI app doing its own authentication; None: ``/mcp``
        answers 503). Requests reach it only with an allowed ``Host``."""
        self._mcp = endpoint

    def serve_history(self, history: engine.MetricHistory | None) -> None:
        """Answer ``/history.json`` from ``history`` (None: 503, the history is off)."""
        self._history = history

    def serve_control(self, call: ControlCall | None) -> None:
        """Answer the JSON routes of :mod:`._control_api` by running their control operations
        through ``call`` (None: they answer 503)."""
        self._control = call

    @property
    def cookie_name(self) -> str:
        """The session cookie's name (cookies are shared between the ports of a host, so it
        names the port)."""
        return f"scribe-dashboard-{self.port}"

    def login_url(self) -> str:
        """A new sign-in link: the page's URL with a one-time token, valid once and for
        :data:`~adapters.http._login.LOGIN_TOKEN_TTL` seconds. Call it from the trio thread."""
        token = self._logins.mint(trio.current_time())
        return f"{self.url}?token={token}"

    def _signed_in(self, headers: Headers) -> bool:
        return self._logins.signed_in(parse_cookies(headers).get(self.cookie_name))

    def _feed_config(self) -> bytes:
        token = make_token(self._secret, FeedScopes.read_all(), FEED_TOKEN_TTL, subject="dashboard")
        return orjson.dumps({"feed_url": self._feed_url, "token": token})

    def health(self) -> dict[str, Any]:
        """The current health payload (as on the ``health`` topic)."""
        checks = self._health_checks() if self._health_checks is not None else None
        sample = self._monitor.sample(self._eng.statistics(), now=time.monotonic(), checks=checks)
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
        headers: Headers = scope["headers"]
        host = _header(headers, b"host")
        token = _query_token(scope.get("query_string", b""))
        if host is None:
            await _respond(send, 400, b"a Host header is required\n", _TEXT)
        elif not self._hosts.allows_host(host, self.port):
            await _respond(send, 403, b"this dashboard does not answer to that host name\n", _TEXT)
        elif path == "/mcp":
            if self._mcp is None:
                await _respond(send, 503, b"the MCP endpoint is not serving yet\n", _TEXT)
            else:
                await self._mcp(scope, receive, send)
        elif scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", _TEXT)
        elif token is not None and path in ("/", "/index.html"):
            await self._sign_in(send, headers, token)
        elif path in PAGE_FILES:
            name, content_type = PAGE_FILES[path]
            extra = [(b"content-security-policy", PAGE_CSP)] if name == "index.html" else []
            await _respond(send, 200, self._files.read(name), content_type, extra)
        elif path == "/config.json":
            if self._signed_in(headers):
                await _respond(send, 200, self._feed_config(), "application/json")
            else:
                await _respond(send, 401, _UNAUTHORIZED, "application/json")
        elif path == "/history.json" or path in CONTROL_ROUTES:
            await self._signed_json(send, headers, path, scope.get("query_string", b""))
        elif path == "/health":
            health = self.health()
            status = 200 if health["status"] == "ok" else 503
            await _respond(send, status, orjson.dumps(health), "application/json")
        elif path == "/metrics":
            await _respond(send, 200, generate_latest(self._registry), CONTENT_TYPE_LATEST)
        else:
            await _respond(send, 404, b"not found\n", "text/plain; charset=utf-8")

    async def _signed_json(self, send: Send, headers: Headers, path: str, query: bytes) -> None:
        if not self._signed_in(headers):
            await _respond(send, 401, _UNAUTHORIZED, "application/json")
            return
        if path in CONTROL_ROUTES:
            status, body = await control_answer(self._control, path, query)
        else:
            status, body = await history_answer(self._history, query)
        await _respond(send, status, orjson.dumps(body), "application/json")

    async def _sign_in(self, send: Send, headers: Headers, token: str) -> None:
        # The token leaves the address bar: a redirect to the page without it, with the cookie.
        cookie = self._logins.redeem(token, trio.current_time())
        if cookie is None and not self._signed_in(headers):
            await _respond(send, 401, _LINK_SPENT, _TEXT)
            return
        extra = [(b"location", b"/")]
        if cookie is not None:
            value = f"{self.cookie_name}={cookie}; Path=/; HttpOnly; SameSite=Strict"
            extra.append((b"set-cookie", value.encode()))
        await _respond(send, 303, b"", _TEXT, extra)


def _header(headers: Headers, name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _query_token(query: bytes) -> str | None:
    if len(query) > 4 * MAX_SECRET_LENGTH:
        return ""
    values = urllib.parse.parse_qs(query.decode("latin-1")).get("token")
    return values[0] if values else None


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"referrer-policy", b"no-referrer"),
                (b"x-content-type-options", b"nosniff"),
                (b"x-frame-options", b"DENY"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def open_dashboard(
    eng: engine.Engine,
    *,
    feed_url: str,
    secret: str | bytes,
    host: str = "127.0.0.1",
    port: int = 0,
    feed: FeedServer | None = None,
    allowed_hosts: Sequence[str] = (),
    health_checks: engine.HealthChecks | None = None,
    collectors: Sequence[Collector] = (),
) -> AsyncIterator[Dashboard]:
    """Serve the dashboard over HTTP for the duration of the block.

    Args:
        eng: the engine whose statistics ``/health`` and ``/metrics`` show.
        feed_url: the live feed's websocket URL the page connects to.
        secret: the feed's token secret; a signed-in page gets read-only tokens made with it.
        host: interface to bind.
        port: TCP port; 0 picks a free one (read it from ``dashboard.port``).
        feed: a feed server whose counters ``/metrics`` shows too; pages of this dashboard may
            then open it from a browser (their ``Origin`` is allowed).
        allowed_hosts: host names the dashboard answers to besides the loopback names and
            ``host`` (see :mod:`adapters.http._access`).
        health_checks: the parts' own checks ``/health`` shows (the database, the capture).
        collectors: more Prometheus collectors ``/metrics`` shows (the background embedder's).

    Entering waits until the server listens. Leaving (or cancellation) stops it, giving open
    requests at most one second.
    """
    dashboard = Dashboard._create(
        eng,
        feed_url,
        secret,
        feed,
        HostAllowlist.of(host, allowed_hosts),
        health_checks,
        collectors,
    )
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
        if feed is not None:
            feed.allow_dashboard(dashboard.port)
        try:
            yield dashboard
        finally:
            stop.set()
            nursery.cancel_scope.deadline = trio.current_time() + 2.0
