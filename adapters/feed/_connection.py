"""One feed client's connection: its reader, sender, pinger, send watchdog and token expiry.

The reader takes the client's commands (rate-limited) and answers through the hub. What the hub has
for the client goes out as soon as the client's queue stops being empty: the server's flush
(:meth:`FeedConnection.flush_nowait`, run right after the events of one pump batch are published)
writes the hub's frames straight to the client's socket while the socket takes whole frames, with no
task switch per client; what the socket does not take (a busy or stalled client, a backlog) is left
to the connection's sender task, which sends one frame at a time from the hub, each send watched
against ``send_timeout``. The pinger drops a dead client; the token's expiry closes the connection
with 4001.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, final

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

import engine
from engine import FeedHub, FeedPosition, FeedTopicError

from ._catch_up import WorklogCatchUp
from ._close_codes import CLOSE_BINARY, CLOSE_POLICY, CLOSE_SLOW, CLOSE_TOKEN_EXPIRED
from ._limits import TokenBucket
from ._protocol import (
    Command,
    FeedProtocolError,
    Ping,
    Subscribe,
    Unsubscribe,
    decode_client_message,
    text_frame,
)
from ._server_config import ConnectionCounters
from ._tokens import FeedClaims

if TYPE_CHECKING:
    from ._server_config import FeedServerConfig

__all__ = ["FeedConnection"]

_log = logging.getLogger(__name__)


@final
class FeedConnection:
    """One accepted websocket client, registered with the hub as ``cid`` for its life."""

    __slots__ = (
        "_catch_up",
        "_config",
        "_counters",
        "_eng",
        "_hub",
        "_lock",
        "_schedule",
        "_stream",
        "bucket",
        "carry",
        "cid",
        "claims",
        "close_code",
        "close_reason",
        "conn",
        "read_scope",
        "ready",
        "running",
        "scope",
        "sending_since",
        "strikes",
    )

    def __init__(
        self,
        conn: WebSocketConnection,
        claims: FeedClaims,
        *,
        eng: engine.Engine,
        hub: FeedHub,
        config: FeedServerConfig,
        counters: ConnectionCounters,
        stream: trio.abc.Stream | None = None,
        schedule: Callable[[FeedConnection], None] | None = None,
        catch_up: Callable[[], WorklogCatchUp | None] | None = None,
    ) -> None:
        self._eng = eng
        self._catch_up = catch_up
        self._hub = hub
        self._config = config
        self._counters = counters
        self.conn = conn
        self.claims = claims
        self.bucket = TokenBucket(config.command_rate, config.command_burst)
        self.ready = trio.Event()
        self.scope = trio.CancelScope()
        self.read_scope = trio.CancelScope()
        self.sending_since = math.inf
        self.strikes = 0
        self.close_code = 1000
        self.close_reason = ""
        self.running = True
        # The tail of a frame the socket did not take at once; the sender writes it before anything.
        self.carry = b""
        # Direct writes need the websocket's socket and the lock its sends hold (so that no write
        # lands inside another's frame); without them every frame goes through the sender task.
        lock = getattr(conn, "_stream_lock", None)
        direct = (
            schedule is not None
            and isinstance(stream, trio.SocketStream)
            and getattr(conn, "_stream", None) is stream
            and isinstance(lock, trio.StrictFIFOLock)
        )
        self._schedule = schedule if direct else None
        self._stream = stream if direct and isinstance(stream, trio.SocketStream) else None
        self._lock = lock if isinstance(lock, trio.StrictFIFOLock) else trio.StrictFIFOLock()
        # The hub calls ``wake`` whenever the client's queue becomes non-empty.
        self.cid = hub.add_client(sessions=claims.scopes.sessions, on_ready=self.wake)

    @property
    def direct(self) -> bool:
        """Whether frames may be written straight to the socket (see :meth:`flush_nowait`)."""
        return self._schedule is not None

    def wake(self) -> None:
        if not self.running:
            return
        if self._schedule is not None and self.sending_since == math.inf and not self.carry:
            self._schedule(self)  # the server's next flush writes it
        else:
            self.ready.set()

    def flush_nowait(self) -> None:
        """Write the hub's frames for this client straight to its socket while it takes them whole.

        Only while the sender is idle and nothing else is writing to the websocket; a frame the
        socket takes only in part leaves its tail in ``carry`` and the rest to the sender task.
        """
        if not self.running:
            return
        if (
            self._schedule is None
            or self.sending_since != math.inf
            or self.carry
            or self.conn.closed is not None
            or self._lock.locked()
        ):
            self.ready.set()
            return
        fd = self._stream.socket.fileno() if self._stream is not None else -1
        if fd < 0:
            self.ready.set()  # closed: the sender finds out
            return
        hub = self._hub
        while (frame := hub.take(self.cid)) is not None:
            data = text_frame(frame)
            try:
                written = os.write(fd, data)
            except BlockingIOError:
                written = 0
            except OSError:
                written = 0  # the peer is gone: the sender's write finds out and ends it
            self._counters.direct_frames += 1
            if written < len(data):
                self._counters.carried_frames += 1
                self.carry = data[written:]
                self.ready.set()
                return

    def close(self, code: int, reason: str, *, hard: bool = False) -> None:
        """Ask for the connection to close with ``code``. A soft close stops reading and lets the
        replies already queued go out first; a hard one (the client does not read) stops at once.
        """
        if self.close_code == 1000:
            self.close_code = code
            self.close_reason = reason
            level = logging.INFO if hard else logging.DEBUG
            _log.log(level, "feed client %s closed (%s): %s", self.cid, code, reason)
        if hard:
            self.scope.cancel()
        else:
            self.read_scope.cancel()

    async def run(self) -> None:
        """Welcome the client, then serve it until it goes away or is closed.

        Cancellation: every task of the connection stops; the caller closes the websocket.
        """
        cfg = self._config
        claims = self.claims
        self._hub.send_control(
            self.cid,
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
        try:
            await self._serve()
        finally:
            self.running = False  # nothing more is written to it

    async def _serve(self) -> None:
        with self.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._send_loop)
                nursery.start_soon(self._ping_loop)
                nursery.start_soon(self._watchdog)
                nursery.start_soon(self._expiry)
                with self.read_scope:
                    await self._read_loop()
                if self.close_code != 1000:
                    # A soft close: take no more events and let the sender deliver what is
                    # queued (the replies saying why), for at most half a second.
                    self._hub.mute(self.cid)
                    with trio.move_on_after(0.5):
                        while self._hub.pending(self.cid) or self.carry:  # noqa: ASYNC110
                            await trio.sleep(0.005)  # the sender or the flush drains it
                        while self.sending_since != math.inf:  # noqa: ASYNC110
                            await trio.sleep(0.005)
                nursery.cancel_scope.cancel()

    async def _send_loop(self) -> None:
        hub = self._hub
        while True:
            if not hub.pending(self.cid) and not self.carry:
                self.ready = trio.Event()
                await self.ready.wait()
            # The watchdog closes the client if a send outlasts send_timeout (cheaper than a
            # cancel scope per send).
            if self.carry and self._stream is not None:
                self.sending_since = trio.current_time()
                try:
                    async with self._lock:
                        await self._stream.send_all(self.carry)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self.scope.cancel()
                    return
                self.carry = b""
                self.sending_since = math.inf
            # Sent as soon as the sender wakes, with no waiting for more: an idle client gets a
            # new event alone and at once; what gathered meanwhile (during the previous send, or
            # in one pump batch) is what the hub joins into frames (FeedHub.take).
            while (frame := hub.take(self.cid)) is not None:
                self.sending_since = trio.current_time()
                try:
                    await self.conn.send_message(frame.decode())
                except ConnectionClosed:
                    self.scope.cancel()
                    return
                engine.record_latency("feed_send", "", trio.current_time() - self.sending_since)
                self.sending_since = math.inf

    async def _watchdog(self) -> None:
        timeout = self._config.send_timeout
        while True:
            await trio.sleep(timeout / 4)
            if trio.current_time() - self.sending_since > timeout:
                self._counters.closed_slow += 1
                self.close(CLOSE_SLOW, "send timeout: the client does not read", hard=True)
                return

    async def _ping_loop(self) -> None:
        cfg = self._config
        while True:
            await trio.sleep(cfg.ping_interval)
            with trio.move_on_after(cfg.ping_timeout) as scope:
                try:
                    await self.conn.ping()
                except ConnectionClosed:
                    self.scope.cancel()
                    return
            if scope.cancelled_caught:
                self._counters.closed_dead += 1
                self.close(CLOSE_SLOW, "ping timeout", hard=True)
                return

    async def _expiry(self) -> None:
        remaining = self.claims.expires_at - time.time()
        if math.isfinite(remaining):
            await trio.sleep(max(0.0, remaining))
            self.close(CLOSE_TOKEN_EXPIRED, "token expired")

    def _error(self, code: str, message: str, rid: Any = None) -> None:
        self._hub.send_control(
            self.cid, {"type": "error", "id": rid, "code": code, "message": message}
        )

    async def _read_loop(self) -> None:
        cfg = self._config
        while True:
            try:
                data = await self.conn.get_message()
            except ConnectionClosed:
                return
            if isinstance(data, bytes):
                self._counters.protocol_errors += 1
                self.close(CLOSE_BINARY, "binary frames are not supported; send JSON text")
                return
            if not self.bucket.try_take(trio.current_time()):
                self._counters.rate_limited += 1
                self.strikes += 1
                if self.strikes > cfg.max_rate_strikes:
                    self._counters.closed_policy += 1
                    self.close(CLOSE_POLICY, "rate limit exceeded")
                    return
                self._error(
                    "rate_limited",
                    f"more than {cfg.command_rate:g} commands per second; slow down",
                )
                continue
            self.strikes = 0
            try:
                message = decode_client_message(data)
            except FeedProtocolError as exc:
                self._counters.protocol_errors += 1
                _log.debug("feed client %s sent a bad message: %s", self.cid, exc.code)
                self._error(exc.code, str(exc), exc.request_id)
                continue
            if isinstance(message, Subscribe):
                await self._subscribe(message)
            else:
                self._dispatch(message)

    async def _subscribe(self, message: Subscribe) -> None:
        hub = self._hub
        try:
            engine.feed_topic_kind(message.topic)
        except FeedTopicError as exc:
            self._error("invalid_topic", str(exc), message.id)
            return
        if not self.claims.scopes.may_read(message.topic):
            self._error("forbidden", f"no read scope for {message.topic!r}", message.id)
            return
        subs = hub.subscriptions(self.cid)
        if message.topic not in subs and len(subs) >= self._config.max_subscriptions:
            self._error("too_many_subscriptions", "unsubscribe first", message.id)
            return
        since = message.since
        position = None if since is None else FeedPosition(since.epoch, since.offset, since.seq)
        catch_up = None if self._catch_up is None else self._catch_up()
        if position is not None and catch_up is not None:
            if await catch_up.subscribe(self.cid, message.topic, position, message.id):
                return
        hub.subscribe(self.cid, message.topic, since=position, request_id=message.id)

    def _dispatch(self, message: Unsubscribe | Ping | Command) -> None:
        hub = self._hub
        if isinstance(message, Unsubscribe):
            try:
                hub.unsubscribe(self.cid, message.topic, request_id=message.id)
            except FeedTopicError as exc:
                self._error("invalid_topic", str(exc), message.id)
        elif isinstance(message, Ping):
            hub.send_control(self.cid, {"type": "pong", "id": message.id})
        else:
            self._command(message)

    def _command(self, message: Command) -> None:
        scopes = self.claims.scopes
        if not scopes.control or not scopes.may_see_session(message.session_id):
            self._error("forbidden", "the token may not send control commands", message.id)
            return
        try:
            session = self._eng.get_session(message.session_id)
        except engine.SessionNotFoundError:
            self._error("not_found", f"no session {message.session_id!r}", message.id)
            return
        session.cancel(grace=message.grace)
        self._hub.send_control(
            self.cid,
            {"type": "result", "id": message.id, "command": message.command, "ok": True},
        )
