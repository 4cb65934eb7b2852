"""A small feed client on trio-websocket: subscribe, resume from a position, iterate events.

```python
async with open_feed_client(url, token) as client:
    await client.subscribe("sessions")
    async for message in client:
        ...  # FeedUpdate, FeedSnapshot or FeedReply
```

The client remembers the position (epoch, offset, and for a worklog the last entry's seq) of every
topic it has seen; pass ``client.positions()`` as ``resume`` to a new client after a disconnect and
its ``subscribe`` calls resume from there (the server sends exactly the missed events, or a
snapshot when it cannot; for a worklog in another epoch, the entries after that seq). A
``resync`` notice from the server (the client fell too far behind) is answered by subscribing again
from the current position, without the caller's help.
"""

from __future__ import annotations

import urllib.parse
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, final

import orjson
import trio
from trio_websocket import (
    ConnectionRejected,
    WebSocketConnection,
    wrap_client_stream,
)
from wsproto.utilities import LocalProtocolError

from engine import FeedPosition

from .._errors import map_exceptions, mapped_exception
from ._errors import FEED_ERRORS, FeedClientError, FeedConnectionError

__all__ = [
    "FeedClient",
    "FeedMessage",
    "FeedReply",
    "FeedSnapshot",
    "FeedUpdate",
    "open_feed_client",
]


@final
@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """One event of a topic."""

    topic: str
    offset: int
    key: str | None
    data: Mapping[str, Any]
    time: float


@final
@dataclass(frozen=True, slots=True)
class FeedSnapshot:
    """The current state of a topic; replaces whatever the client had of it. ``truncated``: the
    server left its oldest entries out (a snapshot is bounded).

    With ``after_seq`` it is a continuation of a worklog the client resumed by seq from another
    epoch: its events are the entries after that seq, to add to what the client has;
    ``truncated`` then says the newest were left out (read them by seq, with the control
    ``worklog``)."""

    topic: str
    epoch: str
    offset: int
    events: tuple[FeedUpdate, ...]
    truncated: bool = False
    after_seq: int | None = None


@final
@dataclass(frozen=True, slots=True)
class FeedReply:
    """Any other server message (``welcome``, ``subscribed``, ``error``, ``pong``, ``resync``...)."""

    type: str
    data: Mapping[str, Any]


#: What a feed client receives: an update, a snapshot or another server reply.
FeedMessage = FeedUpdate | FeedSnapshot | FeedReply


def _seq(update: FeedUpdate, before: int | None) -> int | None:
    """The worklog seq a position holds once ``update`` is had, after ``before`` (None: none)."""
    seq = update.data.get("seq") if update.topic.startswith("worklog:") else None
    if isinstance(seq, int) and not isinstance(seq, bool):
        return seq if before is None else max(seq, before)
    return before


def _update(item: Mapping[str, Any]) -> FeedUpdate:
    return FeedUpdate(item["topic"], item["offset"], item.get("key"), item["data"], item["time"])


@final
class FeedClient:
    """A connected feed client; get one from :func:`open_feed_client`. Iterate it for messages."""

    def __init__(self, conn: WebSocketConnection, resume: Mapping[str, FeedPosition]) -> None:
        self._conn = conn
        self._positions: dict[str, FeedPosition] = dict(resume)
        self._pending: deque[FeedMessage] = deque()
        self._next_id = 0
        self.epoch: str | None = None
        self.welcome: Mapping[str, Any] = {}

    def positions(self) -> dict[str, FeedPosition]:
        """The position of every topic seen so far (pass it as ``resume`` when reconnecting)."""
        return dict(self._positions)

    def position(self, topic: str) -> FeedPosition | None:
        """The position of one topic, or None if nothing of it was seen."""
        return self._positions.get(topic)

    async def _send(self, message: Mapping[str, Any]) -> int:
        self._next_id += 1
        payload = {**message, "id": self._next_id}
        with map_exceptions(FEED_ERRORS):
            await self._conn.send_message(orjson.dumps(payload).decode())
        return self._next_id

    async def subscribe(self, topic: str, *, since: FeedPosition | None = None) -> int:
        """Ask for a topic. Resumes from ``since``, or from the position this client knows.

        Returns the request id (the ``subscribed`` reply carries it). Cancellation may leave the
        request unsent; the connection stays usable.
        """
        since = since if since is not None else self._positions.get(topic)
        message: dict[str, Any] = {"type": "subscribe", "topic": topic}
        if since is not None:
            message["since"] = {"epoch": since.epoch, "offset": since.offset}
            if since.seq is not None and topic.startswith("worklog:"):
                message["since"]["seq"] = since.seq
        return await self._send(message)

    async def unsubscribe(self, topic: str) -> int:
        """Stop receiving a topic. Returns the request id. Cancellation may leave it unsent."""
        return await self._send({"type": "unsubscribe", "topic": topic})

    async def ping(self) -> int:
        """Send an application-level ping (answered by a ``pong`` reply). Returns the request id."""
        return await self._send({"type": "ping"})

    async def cancel_session(self, session_id: str, *, grace: float = 0.0) -> int:
        """Ask the server to cancel a session (needs the ``control`` scope). Returns the request
        id; the answer is a ``result`` or ``error`` reply."""
        return await self._send(
            {
                "type": "command",
                "command": "cancel_session",
                "session_id": session_id,
                "grace": grace,
            }
        )

    async def send_raw(self, message: str | bytes) -> None:
        """Send a frame as is (for tools and tests)."""
        with map_exceptions(FEED_ERRORS):
            await self._conn.send_message(message)

    async def _absorb(self, raw: str | bytes) -> None:
        with map_exceptions(FEED_ERRORS):
            message = orjson.loads(raw)
        if not isinstance(message, dict):
            raise FeedClientError("the server sent a frame that is not a JSON object")
        kind = message.get("type")
        if kind == "events":
            for item in message["events"]:
                update = _update(item)
                known = self._positions.get(update.topic)
                if (
                    known is not None
                    and known.epoch == self.epoch
                    and update.offset <= known.offset
                ):
                    continue  # already seen
                if self.epoch is not None:
                    seq = _seq(update, None if known is None else known.seq)
                    self._positions[update.topic] = FeedPosition(self.epoch, update.offset, seq)
                self._pending.append(update)
        elif kind == "snapshot":
            after = message.get("after_seq")
            snapshot = FeedSnapshot(
                message["topic"],
                message["epoch"],
                message["offset"],
                tuple(_update(e) for e in message["events"]),
                bool(message.get("truncated", False)),
                after if isinstance(after, int) else None,
            )
            known = self._positions.get(snapshot.topic)
            seq = None if known is None or snapshot.after_seq is None else known.seq
            for event in snapshot.events:
                seq = _seq(event, seq)
            self._positions[snapshot.topic] = FeedPosition(snapshot.epoch, snapshot.offset, seq)
            self._pending.append(snapshot)
        else:
            if kind == "welcome":
                self.epoch = message["epoch"]
                self.welcome = message
            elif kind == "resync":
                topic = message["topic"]
                if topic not in self._positions:
                    self._positions[topic] = FeedPosition(message["epoch"], message["offset"])
                await self.subscribe(topic)
            self._pending.append(FeedReply(str(kind), message))

    async def receive(self) -> FeedMessage:
        """Wait for the next message.

        Raises:
            FeedConnectionError: the server closed the connection (``code`` says why).

        Cancellation loses nothing: a frame is either fully taken or left for the next call.
        """
        while not self._pending:
            with map_exceptions(FEED_ERRORS):
                raw = await self._conn.get_message()
            await self._absorb(raw)
        return self._pending.popleft()

    def __aiter__(self) -> AsyncIterator[FeedMessage]:
        return self

    async def __anext__(self) -> FeedMessage:
        try:
            return await self.receive()
        except FeedConnectionError as exc:
            if exc.code in (1000, 1001):
                raise StopAsyncIteration from None
            raise

    async def aclose(self) -> None:
        """Close the connection (shielded, at most one second). Idempotent."""
        with trio.CancelScope(shield=True), trio.move_on_after(1.0):
            await self._conn.aclose()


@asynccontextmanager
async def open_feed_client(
    url: str,
    token: str,
    *,
    resume: Mapping[str, FeedPosition] | None = None,
    max_message_size: int = 16 * 1024 * 1024,
    connect_timeout: float = 10.0,
) -> AsyncIterator[FeedClient]:
    """Connect to a feed server for the duration of the block.

    Args:
        url: the feed URL, e.g. ``ws://127.0.0.1:8765/feed``.
        token: a token from :func:`make_token`, sent as ``Authorization: Bearer``.
        resume: positions from a previous client's :meth:`FeedClient.positions`.
        max_message_size: largest frame accepted from the server.
        connect_timeout: seconds to connect and finish the handshake.

    Raises:
        FeedConnectionError: the handshake was refused (``status`` 401, 403, 429, 503) or failed.

    Entering waits for the server's ``welcome`` message. Leaving closes the connection.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "ws" or not parts.hostname:
        raise FeedClientError(f"a feed URL looks like ws://host:port/feed, not {url!r}")
    host = parts.hostname
    port = parts.port or 80
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    closing = False
    with map_exceptions(FEED_ERRORS):
        stream = await trio.open_tcp_stream(host, port)
    try:
        async with stream, trio.open_nursery() as nursery:
            with map_exceptions(FEED_ERRORS), trio.fail_after(connect_timeout):
                conn = await wrap_client_stream(
                    nursery,
                    stream,
                    f"{host}:{port}",
                    resource,
                    extra_headers=[(b"authorization", f"Bearer {token}".encode())],
                    max_message_size=max_message_size,
                )
            client = FeedClient(conn, resume or {})
            try:
                first = await client.receive()
                if not isinstance(first, FeedReply) or first.type != "welcome":
                    raise FeedClientError(f"expected a welcome message, got {first!r}")
                yield client
            finally:
                closing = True
                with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                    await conn.aclose()
    except BaseExceptionGroup as raised:
        group: BaseExceptionGroup[BaseException] | None = raised
        if closing:
            # The websocket library's reader may fail to answer a ping that crosses our close;
            # that is no error of the caller's.
            # (split by type looks at the leaves; a predicate would keep a nested group whole)
            _, group = raised.split(LocalProtocolError)
        if group is None:
            return
        # Errors from the handshake arrive from the connection's reader task; anything else is
        # the block's own error, passed on unwrapped.
        rejected = group.subgroup(ConnectionRejected)
        if rejected is not None:
            refusal = rejected.exceptions[0]
            assert isinstance(refusal, ConnectionRejected)
            mapped = mapped_exception(FEED_ERRORS, refusal)
            assert mapped is not None
            raise mapped from refusal
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise group from None
