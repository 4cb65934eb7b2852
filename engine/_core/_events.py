"""The in-engine event stream: publishing never blocks; each subscriber has a bounded buffer."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, final

import trio

from ._construction import NoPublicConstructor
from ._errors import InvalidArgumentError

__all__ = ["Event", "EventBus", "Subscription"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened in the engine.

    Attributes:
        seq: engine-wide sequence number, strictly increasing in publication order.
        topic: what kind of event this is, e.g. ``"session.state"``.
        payload: the event's data (JSON-ready values).
        session_id: the session it concerns, if any.
        time: wall-clock time of publication (seconds since the epoch).
    """

    seq: int
    topic: str
    payload: Mapping[str, Any]
    session_id: str | None
    time: float


def _matcher(topics: Collection[str] | None) -> tuple[frozenset[str], tuple[str, ...]] | None:
    if topics is None:
        return None
    if isinstance(topics, str):
        topics = (topics,)
    exact: set[str] = set()
    prefixes: list[str] = []
    for t in topics:
        if not isinstance(t, str) or not t:
            raise InvalidArgumentError(f"topic must be a non-empty string, not {t!r}")
        if t.endswith("*"):
            prefixes.append(t[:-1])
        else:
            exact.add(t)
    return frozenset(exact), tuple(prefixes)


@final
class Subscription(metaclass=NoPublicConstructor):
    """A bounded view of the event stream. Iterate it with ``async for``. Get one from
    :meth:`Engine.open_subscription`.

    When the buffer is full, the oldest buffered event is dropped to make room and :attr:`dropped`
    counts it, so a slow subscriber never slows the publisher.
    """

    __slots__ = ("_buffer", "_bus", "_closed", "_lot", "_match", "_max", "dropped")

    def __init__(self, bus: EventBus, topics: Collection[str] | None, max_buffer: int) -> None:
        if isinstance(max_buffer, bool) or not isinstance(max_buffer, int) or max_buffer < 1:
            raise InvalidArgumentError(f"max_buffer must be an int >= 1, not {max_buffer!r}")
        self._bus = bus
        self._match = _matcher(topics)
        self._max = max_buffer
        self._buffer: deque[Event] = deque()
        self._lot = trio.lowlevel.ParkingLot()
        self._closed = False
        self.dropped = 0

    def wants(self, topic: str) -> bool:
        """Whether events of ``topic`` are delivered to this subscription."""
        m = self._match
        if m is None:
            return True
        exact, prefixes = m
        return topic in exact or any(topic.startswith(p) for p in prefixes)

    def _offer(self, event: Event) -> None:
        if self._closed or not self.wants(event.topic):
            return
        if len(self._buffer) >= self._max:
            self._buffer.popleft()
            self.dropped += 1
            if self.dropped == 1:
                _log.warning(
                    "a subscriber of %s reads too slowly: its oldest events are dropped "
                    "(counted in its dropped)",
                    "every topic" if self._match is None else "some topics",
                )
        self._buffer.append(event)
        self._lot.unpark_all()

    def receive_nowait(self) -> Event:
        """Return the oldest buffered event or raise ``trio.WouldBlock``; ``trio.EndOfChannel`` once closed
        and drained."""
        if self._buffer:
            return self._buffer.popleft()
        if self._closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> Event:
        """Wait for the next event.

        Raises ``trio.EndOfChannel`` once the subscription is closed and drained. Cancellation while
        waiting loses nothing: the event stays buffered for the next call.
        """
        while True:
            try:
                event = self.receive_nowait()
            except trio.WouldBlock:
                await self._lot.park()
                continue
            await trio.lowlevel.checkpoint()
            return event

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Stop receiving; buffered events can still be read. Idempotent."""
        if not self._closed:
            self._closed = True
            self._bus._subscribers.discard(self)
            self._lot.unpark_all()


@final
class EventBus:
    """Fans events out to subscriptions. :meth:`publish_nowait` never blocks and never fails because
    of a subscriber."""

    def __init__(self) -> None:
        self._seq = 0
        self._subscribers: set[Subscription] = set()

    @property
    def published(self) -> int:
        """How many events were published."""
        return self._seq

    @property
    def has_subscribers(self) -> bool:
        """Whether anyone listens (lets a publisher skip building a costly payload)."""
        return bool(self._subscribers)

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscribers)

    def publish_nowait(
        self, topic: str, payload: Mapping[str, Any], *, session_id: str | None = None
    ) -> Event:
        """Publish an event to every matching subscription and return it. Never blocks."""
        if not isinstance(topic, str) or not topic:
            raise InvalidArgumentError(f"topic must be a non-empty string, not {topic!r}")
        self._seq += 1
        event = Event(self._seq, topic, payload, session_id, time.time())
        for sub in tuple(self._subscribers):
            sub._offer(event)
        return event

    @asynccontextmanager
    async def open_subscription(
        self, topics: Collection[str] | None = None, *, max_buffer: int = 1000
    ) -> AsyncIterator[Subscription]:
        """Subscribe for the duration of the block.

        Args:
            topics: topic names to receive (a name ending in ``*`` matches by prefix); None for all.
            max_buffer: how many undelivered events to keep before dropping the oldest.

        Entering does not wait. Cancellation of a reader leaves the subscription and its buffer intact
        until the block exits, when it is closed.
        """
        sub = Subscription._create(self, topics, max_buffer)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            sub.close()
