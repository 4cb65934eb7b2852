"""The live feed server on trio-websocket: the engine's events to authenticated websocket clients.

The :class:`engine.FeedHub` decides what each client gets; this module does the I/O:

* one pump task reads the engine's event stream and publishes it into the hub (each event is
  encoded once there);
* per client: a reader task (commands, rate-limited), a sender task (one frame at a time from the
  hub, each send under ``send_timeout``), a pinger (dead-client detection) and the token's expiry;
* authentication happens in the handshake: a missing, forged or expired token gets HTTP 401, a token
  with no read scope 403, a token over its connection limit 429, a full server 503.

The message schema is in docs/feed.md.
"""

from __future__ import annotations

import logging
import math
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
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
from engine import FeedHub, FeedHubStatistics, FeedPosition, FeedTopicError

from ._limits import ConnectionLimiter, ConnectionLimitError, TokenBucket
from ._protocol import (
    Command,
    FeedProtocolError,
    Ping,
    Subscribe,
    Unsubscribe,
    decode_client_message,
)
from ._tokens import (
    FeedClaims,
    FeedTokenError,
    FeedTokenExpiredError,
    check_secret,
    verify_token,
)

__all__ = [
    "CLOSE_BINARY",
    "CLOSE_POLICY",
    "CLOSE_SLOW",
    "CLOSE_TOKEN_EXPIRED",
    "FeedServer",
    "FeedServerConfig",
    "FeedServerStatistics",
    "encode_json",
    "open_feed_server",
]

logger = logging.getLogger("adapters.feed")

#: Close code for a binary frame (the feed speaks JSON text only).
CLOSE_BINARY: Final = 1003
#: Close code for a client that keeps flooding past its rate limit.
CLOSE_POLICY: Final = 1008
#: Close code for a client that did not take a frame within ``send_timeout`` or answer a ping.
CLOSE_SLOW: Final = 4008
#: Close code when the connection's token expires.
CLOSE_TOKEN_EXPIRED: Final = 4001
#: Engine topics the feed carries.
ENGINE_TOPICS: Final = ("session.state", "session.worklog", "session.context", "health", "metrics")


def encode_json(value: Any) -> bytes:
    """Encode a JSON-ready value with orjson (unknown objects become strings)."""
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)


@final
@dataclass(frozen=True, slots=True)
class FeedServerConfig:
    """Tuning of a feed server. The defaults suit a daemon on one machine.

    Attributes:
        path: the websocket path clients connect to.
        history_size: events kept per topic for resuming.
        client_queue_size: ordered events queued per client before it must resync.
        max_frame_events: events per frame at most.
        max_frame_bytes: frames stop growing past this many bytes.
        max_snapshot_bytes: an ordered topic's snapshot holds its newest entries up to this size.
        max_message_size: largest client message accepted (bigger ones close with 1009).
        send_timeout: seconds one frame may take to send before the client is dropped as stalled.
        min_frame_interval: seconds between two flushes to one client; events arriving in between
            share frames (0 sends every event at once, at a syscall per event per client).
        ping_interval: seconds between server pings.
        ping_timeout: seconds a pong may take before the client is dropped as dead.
        command_rate: client commands per second refilled into each connection's bucket.
        command_burst: bucket size.
        max_rate_strikes: commands refused in a row before the connection is closed (1008).
        max_connections_per_token: open connections one token (``jti``) may have.
        max_clients: open connections in all.
        max_subscriptions: topics one connection may subscribe to.
        engine_buffer: events buffered between the engine and the feed pump.
        handshake_timeout: seconds a client has to finish the websocket handshake.
    """

    path: str = "/feed"
    history_size: int = 1000
    client_queue_size: int = 1000
    max_frame_events: int = 500
    max_frame_bytes: int = 256 * 1024
    max_snapshot_bytes: int = 1024 * 1024
    max_message_size: int = 64 * 1024
    send_timeout: float = 10.0
    min_frame_interval: float = 0.005
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    command_rate: float = 20.0
    command_burst: int = 40
    max_rate_strikes: int = 20
    max_connections_per_token: int = 8
    max_clients: int = 1000
    max_subscriptions: int = 256
    engine_buffer: int = 100_000
    handshake_timeout: float = 10.0


@final
@dataclass(frozen=True, slots=True)
class FeedServerStatistics:
    """Counters of a feed server (see :meth:`FeedServer.statistics`)."""

    clients: int
    accepted: int
    rejected: int
    closed_slow: int
    closed_dead: int
    closed_policy: int
    protocol_errors: int
    rate_limited: int
    engine_dropped: int
    handler_errors: int
    skipped_events: int
    hub: FeedHubStatistics


@final
class _Client:
    __slots__ = (
        "bucket",
        "cid",
        "claims",
        "close_code",
        "close_reason",
        "conn",
        "read_scope",
        "ready",
        "scope",
        "sending_since",
        "strikes",
    )

    def __init__(
        self, cid: int, conn: WebSocketConnection, claims: FeedClaims, bucket: TokenBucket
    ):
        self.cid = cid
        self.conn = conn
        self.claims = claims
        self.bucket = bucket
        self.ready = trio.Event()
        self.scope = trio.CancelScope()
        self.read_scope = trio.CancelScope()
        self.sending_since = math.inf
        self.strikes = 0
        self.close_code = 1000
        self.close_reason = ""

    def wake(self) -> None:
        self.ready.set()

    def close(self, code: int, reason: str, *, hard: bool = False) -> None:
        """Ask for the connection to close with ``code``. A soft close stops reading and lets the
        replies already queued go out first; a hard one (the client does not read) stops at once.
        """
        if self.close_code == 1000:
            self.close_code = code
            self.close_reason = reason
        if hard:
            self.scope.cancel()
        else:
            self.read_scope.cancel()


def _token_from(request: WebSocketRequest) -> tuple[str, str | None]:
    target = urllib.parse.urlsplit(request.path)
    for name, value in request.headers:
        if name.lower() == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return target.path, credentials.strip()
    tokens = urllib.parse.parse_qs(target.query).get("token")
    return target.path, tokens[0] if tokens else None


@final
class FeedServer:
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
        self._clients: dict[int, _Client] = {}
        self._closing = False
        self._drained = trio.Event()
        self._accepted = 0
        self._rejected = 0
        self._closed_slow = 0
        self._closed_dead = 0
        self._closed_policy = 0
        self._protocol_errors = 0
        self._rate_limited = 0
        self._engine_dropped = 0
        self._handler_errors = 0
        self._skipped = 0

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        return self._port

    @property
    def url(self) -> str:
        """The websocket URL clients connect to (without a token)."""
        return f"ws://{self._host}:{self._port}{self._config.path}"

    @property
    def hub(self) -> FeedHub:
        """The hub deciding what each client gets."""
        return self._hub

    @property
    def epoch(self) -> str:
        """The feed's epoch (random per server start)."""
        return self._hub.epoch

    def statistics(self) -> FeedServerStatistics:
        """A snapshot of the server's counters."""
        return FeedServerStatistics(
            clients=len(self._clients),
            accepted=self._accepted,
            rejected=self._rejected,
            closed_slow=self._closed_slow,
            closed_dead=self._closed_dead,
            closed_policy=self._closed_policy,
            protocol_errors=self._protocol_errors,
            rate_limited=self._rate_limited,
            engine_dropped=self._engine_dropped,
            handler_errors=self._handler_errors,
            skipped_events=self._skipped,
            hub=self._hub.statistics(),
        )

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
            logger.warning("feed skipped engine event %s #%d: %s", event.topic, event.seq, exc)

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
                self._engine_dropped = sub.dropped

    # ------------------------------------------------------------------ connections

    async def _reject(
        self, request: WebSocketRequest, status: int, code: str, message: str
    ) -> None:
        self._rejected += 1
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
                    await self._handle_request(request)
                nursery.cancel_scope.cancel()
        except* (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the peer went away
        except* LocalProtocolError:
            pass  # the peer pinged or wrote while the connection was closing
        except* Exception:
            self._handler_errors += 1
            logger.exception("feed connection failed")

    async def _handle_request(self, request: WebSocketRequest) -> None:
        path, token = _token_from(request)
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
            await self._serve(conn, claims)
        finally:
            self._limiter.release(claims.token_id)

    async def _serve(self, conn: WebSocketConnection, claims: FeedClaims) -> None:
        cfg = self._config
        bucket = TokenBucket(cfg.command_rate, cfg.command_burst)
        client = _Client(0, conn, claims, bucket)
        # The hub calls ``wake`` whenever the client's queue becomes non-empty.
        cid = client.cid = self._hub.add_client(
            sessions=claims.scopes.sessions, on_ready=client.wake
        )
        self._clients[cid] = client
        self._accepted += 1
        try:
            self._hub.send_control(
                cid,
                {
                    "type": "welcome",
                    "epoch": self._hub.epoch,
                    "subject": claims.subject,
                    "expires_at": claims.expires_at,
                    "scopes": claims.scopes.to_claim(),
                    "limits": {
                        "max_message_size": cfg.max_message_size,
                        "command_rate": cfg.command_rate,
                        "command_burst": cfg.command_burst,
                        "history_size": cfg.history_size,
                        "client_queue_size": cfg.client_queue_size,
                    },
                },
            )
            with client.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._send_loop, client)
                    nursery.start_soon(self._ping_loop, client)
                    nursery.start_soon(self._watchdog, client)
                    nursery.start_soon(self._expiry, client)
                    with client.read_scope:
                        await self._read_loop(client)
                    if client.close_code != 1000:
                        # A soft close: take no more events and let the sender deliver what is
                        # queued (the replies saying why), for at most half a second.
                        self._hub.mute(cid)
                        with trio.move_on_after(0.5):
                            while self._hub.pending(cid):  # noqa: ASYNC110 - the sender drains it
                                await trio.sleep(0.005)
                            while client.sending_since != math.inf:  # noqa: ASYNC110
                                await trio.sleep(0.005)
                    nursery.cancel_scope.cancel()
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

    async def _send_loop(self, client: _Client) -> None:
        hub = self._hub
        interval = self._config.min_frame_interval
        last_flush = -math.inf
        while True:
            if not hub.pending(client.cid):
                client.ready = trio.Event()
                await client.ready.wait()
            # At most one flush per interval: under load the events of the interval share frames
            # (one send per client instead of one per event); a quiet client is served at once.
            wait_until = last_flush + interval
            if wait_until > trio.current_time():
                await trio.sleep_until(wait_until)
            last_flush = trio.current_time()
            while (frame := hub.take(client.cid)) is not None:
                # The watchdog closes the client if this send outlasts send_timeout (cheaper than
                # a cancel scope per send).
                client.sending_since = trio.current_time()
                try:
                    await client.conn.send_message(frame.decode())
                except ConnectionClosed:
                    client.scope.cancel()
                    return
                client.sending_since = math.inf

    async def _watchdog(self, client: _Client) -> None:
        timeout = self._config.send_timeout
        while True:
            await trio.sleep(timeout / 4)
            if trio.current_time() - client.sending_since > timeout:
                self._closed_slow += 1
                client.close(CLOSE_SLOW, "send timeout: the client does not read", hard=True)
                return

    async def _ping_loop(self, client: _Client) -> None:
        cfg = self._config
        while True:
            await trio.sleep(cfg.ping_interval)
            with trio.move_on_after(cfg.ping_timeout) as scope:
                try:
                    await client.conn.ping()
                except ConnectionClosed:
                    client.scope.cancel()
                    return
            if scope.cancelled_caught:
                self._closed_dead += 1
                client.close(CLOSE_SLOW, "ping timeout", hard=True)
                return

    async def _expiry(self, client: _Client) -> None:
        remaining = client.claims.expires_at - time.time()
        if math.isfinite(remaining):
            await trio.sleep(max(0.0, remaining))
            client.close(CLOSE_TOKEN_EXPIRED, "token expired")

    def _error(self, client: _Client, code: str, message: str, rid: Any = None) -> None:
        self._hub.send_control(
            client.cid, {"type": "error", "id": rid, "code": code, "message": message}
        )

    async def _read_loop(self, client: _Client) -> None:
        cfg = self._config
        while True:
            try:
                data = await client.conn.get_message()
            except ConnectionClosed:
                return
            if isinstance(data, bytes):
                self._protocol_errors += 1
                client.close(CLOSE_BINARY, "binary frames are not supported; send JSON text")
                return
            if not client.bucket.try_take(trio.current_time()):
                self._rate_limited += 1
                client.strikes += 1
                if client.strikes > cfg.max_rate_strikes:
                    self._closed_policy += 1
                    client.close(CLOSE_POLICY, "rate limit exceeded")
                    return
                self._error(
                    client,
                    "rate_limited",
                    f"more than {cfg.command_rate:g} commands per second; slow down",
                )
                continue
            client.strikes = 0
            try:
                message = decode_client_message(data)
            except FeedProtocolError as exc:
                self._protocol_errors += 1
                self._error(client, exc.code, str(exc), exc.request_id)
                continue
            self._dispatch(client, message)

    def _dispatch(self, client: _Client, message: Subscribe | Unsubscribe | Ping | Command) -> None:
        hub = self._hub
        scopes = client.claims.scopes
        if isinstance(message, Subscribe):
            try:
                engine.feed_topic_kind(message.topic)
            except FeedTopicError as exc:
                self._error(client, "invalid_topic", str(exc), message.id)
                return
            if not scopes.may_read(message.topic):
                self._error(client, "forbidden", f"no read scope for {message.topic!r}", message.id)
                return
            subs = hub.subscriptions(client.cid)
            if message.topic not in subs and len(subs) >= self._config.max_subscriptions:
                self._error(client, "too_many_subscriptions", "unsubscribe first", message.id)
                return
            since = message.since
            hub.subscribe(
                client.cid,
                message.topic,
                since=None if since is None else FeedPosition(since.epoch, since.offset),
                request_id=message.id,
            )
        elif isinstance(message, Unsubscribe):
            try:
                hub.unsubscribe(client.cid, message.topic, request_id=message.id)
            except FeedTopicError as exc:
                self._error(client, "invalid_topic", str(exc), message.id)
        elif isinstance(message, Ping):
            hub.send_control(client.cid, {"type": "pong", "id": message.id})
        else:
            self._command(client, message)

    def _command(self, client: _Client, message: Command) -> None:
        scopes = client.claims.scopes
        if not scopes.control or not scopes.may_see_session(message.session_id):
            self._error(client, "forbidden", "the token may not send control commands", message.id)
            return
        try:
            session = self._eng.get_session(message.session_id)
        except engine.SessionNotFoundError:
            self._error(client, "not_found", f"no session {message.session_id!r}", message.id)
            return
        session.cancel(grace=message.grace)
        self._hub.send_control(
            client.cid,
            {"type": "result", "id": message.id, "command": message.command, "ok": True},
        )


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
        encode=encode_json,
    )
    server = FeedServer(eng, hub, secret, cfg, host)
    async with trio.open_nursery() as nursery:
        await nursery.start(server._pump)
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
