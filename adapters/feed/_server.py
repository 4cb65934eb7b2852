"""The live feed server on trio-websocket: the engine's events to authenticated websocket clients.

The :class:`engine.FeedHub` decides what each client gets; this module does the I/O:

* one pump task reads the engine's event stream and publishes it into the hub (each event is
  encoded once there);
* right after each pump batch (and whenever a client's queue stops being empty) the flush writes
  what the hub has for each such client straight to its socket while it takes whole frames: an idle
  client gets a new event at once, with no task switch per client;
* per client (:mod:`._connection`): a reader task (commands, rate-limited), a sender task (what the
  socket did not take at once: one frame at a time from the hub, each send under ``send_timeout``),
  a pinger (dead-client detection) and the token's expiry;
* authentication happens in the handshake (:mod:`._access` first: no ``Host`` 400, a foreign host or
  browser ``Origin`` 403); a missing, forged or expired token 401, a token with no read scope 403,
  a token over its connection limit 429, a full server 503.

The message schema is in docs/feed.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, final

import orjson
import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    wrap_server_stream,
)
from wsproto.utilities import LocalProtocolError

import engine
from engine import FeedHub, FeedTopicError

from ..http._access import HostAllowlist, url_host
from ._access import HandshakeAccess, request_token
from ._catch_up import WorklogCatchUp
from ._connection import FeedConnection
from ._errors import FeedTokenError, FeedTokenExpiredError
from ._limits import ConnectionLimiter, ConnectionLimitError
from ._server_config import ConnectionCounters, FeedServerConfig, FeedServerStatistics
from ._tokens import FeedClaims, check_secret, verify_token

__all__ = [
    "FeedServer",
    "FeedServerConfig",
    "FeedServerStatistics",
    "encode_json",
    "open_feed_server",
]

logger = logging.getLogger(__name__)

#: Engine topics the feed carries.
ENGINE_TOPICS: Final = (
    "session.state",
    "session.worklog",
    "session.context",
    "health",
    "health.alert",
    "metrics",
)


def encode_json(value: Any) -> bytes:
    """Encode a JSON-ready value with orjson (unknown objects become strings)."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)


@final
class FeedServer(metaclass=engine.NoPublicConstructor):
    """A running feed server; get one from :func:`open_feed_server`."""

    def __init__(
        self,
        eng: engine.Engine,
        hub: FeedHub,
        secret: str | bytes,
        config: FeedServerConfig,
        host: str,
    ) -> None:
        self._eng = eng
        self._hub = hub
        self._secret = secret
        self._config = config
        self._host = host
        self._port = 0
        self._limiter = ConnectionLimiter(config.max_connections_per_token)
        self._access = HandshakeAccess(HostAllowlist.of(host, config.allowed_hosts))
        self._clients: dict[int, FeedConnection] = {}
        self._closing = False
        self._drained = trio.Event()
        self._accepted = 0
        self._rejected = 0
        self._throttle = engine.LogThrottle(logger)
        self._counters = ConnectionCounters()
        self._engine_dropped = 0
        self._handler_errors = 0
        self._skipped = 0
        self._dirty: list[FeedConnection] = []
        self._flush_wanted = trio.Event()
        self._catch_up: WorklogCatchUp | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return self._port

    @property
    def url(self) -> str:
        """The websocket URL clients connect to (without a token)."""
        return f"ws://{url_host(self._host)}:{self._port}{self._config.path}"

    @property
    def hub(self) -> FeedHub:
        """The hub deciding what each client gets."""
        return self._hub

    @property
    def epoch(self) -> str:
        """The feed's epoch (random per server start)."""
        return self._hub.epoch

    def serve_worklog(self, store: engine.WorklogStore | None) -> None:
        """Let clients resume ``worklog:<id>`` topics by entry seq across epochs, reading what they
        missed from ``store`` (:mod:`._catch_up`; None: they get the usual snapshot)."""
        self._catch_up = None if store is None else WorklogCatchUp(self._hub, store)

    def allow_dashboard(self, port: int) -> None:
        """Let browser pages of the dashboard on ``port`` open the feed (no other ``Origin`` may)."""
        self._access.page_ports.add(port)

    def statistics(self) -> FeedServerStatistics:
        """A snapshot of the server's counters."""
        return FeedServerStatistics(
            clients=len(self._clients),
            accepted=self._accepted,
            rejected=self._rejected,
            closed_slow=self._counters.closed_slow,
            closed_dead=self._counters.closed_dead,
            closed_policy=self._counters.closed_policy,
            protocol_errors=self._counters.protocol_errors,
            rate_limited=self._counters.rate_limited,
            engine_dropped=self._engine_dropped,
            handler_errors=self._handler_errors,
            skipped_events=self._skipped,
            direct_frames=self._counters.direct_frames,
            carried_frames=self._counters.carried_frames,
            hub=self._hub.statistics(),
        )

    # ------------------------------------------------------------------ flushing

    def _schedule(self, client: FeedConnection) -> None:
        """Called (through the hub) when a client's queue stops being empty."""
        self._dirty.append(client)
        self._flush_wanted.set()

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for client in dirty:
            client.flush_nowait()

    async def _flusher(self) -> None:
        # Flushes what was queued outside a pump batch (replies to commands, snapshots).
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted = trio.Event()
            self._flush()

    # ------------------------------------------------------------------ engine side

    def _publish(self, event: engine.Event) -> None:
        try:
            self._hub.publish_engine_event(
                event.topic, event.payload, session_id=event.session_id, time=event.time
            )
        except (FeedTopicError, TypeError, ValueError) as exc:
            # An event the feed cannot carry (a session id unfit for a topic name, a payload
            # that is not JSON) is skipped and counted; the feed goes on.
            self._skipped += 1
            self._throttle.failed(event.topic, "feed skipped engine event %s: %s", event.topic, exc)

    async def _pump(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with self._eng.open_subscription(
            ENGINE_TOPICS, max_buffer=self._config.engine_buffer
        ) as sub:
            now = time.time()
            for session in self._eng.sessions(include_finished=True):
                self._hub.publish("sessions", session.info().as_dict(), key=session.id, time=now)
            task_status.started()
            while True:
                try:
                    event = await sub.receive()
                except trio.EndOfChannel:
                    return
                self._publish(event)
                # Drain what is already buffered without a checkpoint per event.
                while True:
                    try:
                        event = sub.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    self._publish(event)
                self._flush()  # at once: the flusher task would cost a task switch
                self._engine_dropped = sub.dropped

    # ------------------------------------------------------------------ connections

    async def _reject(
        self, request: WebSocketRequest, status: int, code: str, message: str
    ) -> None:
        self._rejected += 1
        # Once a minute per reason: a flood of refused connections is one line, not many.
        level = logging.WARNING if status in (401, 403) else logging.INFO
        self._throttle.failed(code, "feed connection refused (%s): %s", code, message, level=level)
        body = encode_json({"error": code, "message": message})
        await request.reject(
            status, extra_headers=[(b"content-type", b"application/json")], body=body
        )

    async def _handle_stream(self, stream: trio.SocketStream) -> None:
        # One connection's trouble (including errors of the websocket library's own reader task)
        # never reaches the server or the other clients.
        cfg = self._config
        try:
            async with stream, trio.open_nursery() as nursery:
                request: WebSocketRequest | None = None
                with trio.move_on_after(cfg.handshake_timeout):
                    request = await wrap_server_stream(
                        nursery, stream, max_message_size=cfg.max_message_size
                    )
                if request is not None:
                    await self._handle_request(request, stream)
                nursery.cancel_scope.cancel()
        except* (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            logger.debug("a feed client went away")
        except* LocalProtocolError:
            logger.debug("a feed client pinged or wrote while its connection was closing")
        except* Exception:
            self._handler_errors += 1
            logger.exception("feed connection failed")

    async def _handle_request(self, request: WebSocketRequest, stream: trio.SocketStream) -> None:
        if (refusal := self._access.refusal(request, self._port)) is not None:
            await self._reject(request, *refusal)
            return
        path, token = request_token(request)
        if path != self._config.path:
            await self._reject(request, 404, "not_found", f"the feed is at {self._config.path}")
            return
        if token is None:
            await self._reject(request, 401, "missing_token", "a bearer token is required")
            return
        try:
            claims = verify_token(self._secret, token)
        except FeedTokenExpiredError as exc:
            await self._reject(request, 401, "token_expired", str(exc))
            return
        except FeedTokenError as exc:
            await self._reject(request, 401, "invalid_token", str(exc))
            return
        if not claims.scopes.topics:
            await self._reject(request, 403, "forbidden", "the token allows reading no topic")
            return
        if self._closing or len(self._clients) >= self._config.max_clients:
            await self._reject(request, 503, "server_full", "the feed has no room for a client")
            return
        try:
            self._limiter.acquire(claims.token_id)
        except ConnectionLimitError as exc:
            await self._reject(request, 429, "too_many_connections", str(exc))
            return
        try:
            conn = await request.accept()
            await self._serve(conn, claims, stream)
        finally:
            self._limiter.release(claims.token_id)

    async def _serve(
        self, conn: WebSocketConnection, claims: FeedClaims, stream: trio.SocketStream
    ) -> None:
        client = FeedConnection(
            conn,
            claims,
            eng=self._eng,
            hub=self._hub,
            config=self._config,
            counters=self._counters,
            stream=stream,
            schedule=self._schedule,
            catch_up=lambda: self._catch_up,
        )
        cid = client.cid
        self._clients[cid] = client
        self._accepted += 1
        try:
            await client.run()
        finally:
            del self._clients[cid]
            code, reason = client.close_code, client.close_reason
            if self._closing and code == 1000:
                code, reason = 1001, "server shutting down"
            try:
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    await conn.aclose(code, reason)
            finally:
                self._hub.remove_client(cid)
                if self._closing and not self._clients:
                    self._drained.set()


@asynccontextmanager
async def open_feed_server(
    eng: engine.Engine,
    *,
    secret: str | bytes,
    host: str = "127.0.0.1",
    port: int = 0,
    config: FeedServerConfig | None = None,
    epoch: str | None = None,
) -> AsyncIterator[FeedServer]:
    """Serve the engine's live feed over websockets for the duration of the block.

    Args:
        eng: the engine whose events are served.
        secret: the token signing secret (at least 32 bytes); see :func:`make_token`.
        host: interface to bind.
        port: TCP port; 0 picks a free one (read it from ``server.port``).
        config: tuning; defaults to :class:`FeedServerConfig()`.
        epoch: the feed epoch; random when not given (resuming across a restart then starts over).

    Entering waits until the server listens. Leaving (or cancellation of the block) closes every
    client with code 1001 (shielded, at most two seconds in all) and stops the server.
    """
    cfg = config if config is not None else FeedServerConfig()
    check_secret(secret)
    hub = FeedHub(
        epoch=epoch,
        history_size=cfg.history_size,
        client_queue_size=cfg.client_queue_size,
        max_frame_events=cfg.max_frame_events,
        max_frame_bytes=cfg.max_frame_bytes,
        max_snapshot_bytes=cfg.max_snapshot_bytes,
        max_snapshot_keys=cfg.max_snapshot_keys,
        encode=encode_json,
    )
    server = FeedServer._create(eng, hub, secret, cfg, host)
    async with trio.open_nursery() as nursery:
        await nursery.start(server._pump)
        nursery.start_soon(server._flusher)
        listeners = await trio.open_tcp_listeners(port, host=host)
        await nursery.start(trio.serve_listeners, server._handle_stream, listeners)
        server._port = listeners[0].socket.getsockname()[1]
        try:
            yield server
        finally:
            # Close every client with 1001 and give the close handshakes a moment to finish
            # (shielded, at most 2 s), then stop everything.
            server._closing = True
            for client in list(server._clients.values()):
                client.close(1001, "server shutting down")
            if server._clients:
                with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                    await server._drained.wait()
            nursery.cancel_scope.cancel()
