"""The live feed's decisions: what each subscriber gets, in which frames, and when it must resync.

The hub does no I/O. A server feeds it events (:meth:`FeedHub.publish`), registers clients and asks
it for the next frame to send to each client (:meth:`FeedHub.take`). Every decision lives here so
that it can be tested without sockets:

* Each feed topic has an offset (one more per event) and a bounded history ring; with the hub's
  *epoch* (random per hub) they let a reconnecting client resume with ``since={epoch, offset}`` and
  get exactly the events it missed, or ``recovered: false`` and a fresh snapshot when they are gone.
* **State topics** (``sessions``, ``health``, ``metrics``) hold the newest value per key. A client
  that falls behind gets only the newest pending value per key (conflation).
* **Ordered topics** (``worklog:<session_id>``, ``context:<session_id>``) go through a bounded
  per-client queue, in order; past its bound the client's backlog is dropped and it is told to
  resync from the last offset it was given (it then resumes from the history ring when it can).
* Events are encoded once when published; a frame joins the encoded events of several events
  (``{"type": "events", "events": [...]}``), so busy clients get several events per frame.
"""

from __future__ import annotations

import enum
import json
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, final

from .._core._errors import ScribeError

__all__ = [
    "STATE_TOPICS",
    "FeedClientNotFoundError",
    "FeedEvent",
    "FeedHub",
    "FeedHubStatistics",
    "FeedPosition",
    "FeedTopicError",
    "TopicKind",
    "feed_topic_kind",
    "route_engine_event",
]

#: Feed topics whose events are the newest value of a key (conflated for slow clients).
STATE_TOPICS: Final = frozenset({"sessions", "health", "metrics"})
#: Prefixes of per-session ordered topics: ``worklog:<session_id>``, ``context:<session_id>``.
ORDERED_PREFIXES: Final = ("worklog:", "context:")
_MAX_TOPIC_LENGTH: Final = 200

Encoder = Callable[[Any], bytes]


class FeedTopicError(ScribeError, ValueError):
    """A topic name is not one of the feed's topics."""


class FeedClientNotFoundError(ScribeError, LookupError):
    """The hub has no client with that id (it was removed, or never added)."""


class TopicKind(enum.Enum):
    """How a topic is delivered to a client that falls behind."""

    STATE = "state"
    ORDERED = "ordered"


def feed_topic_kind(topic: str) -> TopicKind:
    """Return the kind of a feed topic name, or raise :class:`FeedTopicError` if it is not one."""
    if not isinstance(topic, str):
        raise FeedTopicError(f"a topic is a string, not {type(topic).__name__}")
    if topic in STATE_TOPICS:
        return TopicKind.STATE
    for prefix in ORDERED_PREFIXES:
        if topic.startswith(prefix):
            rest = topic[len(prefix) :]
            if rest and len(topic) <= _MAX_TOPIC_LENGTH and rest.isprintable() and " " not in rest:
                return TopicKind.ORDERED
            break
    raise FeedTopicError(
        f"unknown topic {topic[:_MAX_TOPIC_LENGTH]!r}: expected one of sessions, health, metrics, "
        "worklog:<session_id>, context:<session_id>"
    )


def route_engine_event(
    topic: str, payload: Mapping[str, Any], session_id: str | None
) -> tuple[str, str | None] | None:
    """Map an engine event to ``(feed_topic, key)``, or None when the feed does not carry it.

    ``session.state`` goes to ``sessions`` keyed by the session id; ``session.worklog`` and
    ``session.context`` go to ``worklog:<id>`` and ``context:<id>``; ``health`` and ``metrics`` keep
    their names (one key each).
    """
    if topic == "session.state":
        sid = payload.get("id", session_id)
        return ("sessions", str(sid)) if sid is not None else None
    if topic == "session.worklog" and session_id:
        return f"worklog:{session_id}", None
    if topic == "session.context" and session_id:
        return f"context:{session_id}", None
    if topic in ("health", "metrics"):
        return topic, topic
    return None


def _json_encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@final
@dataclass(frozen=True, slots=True)
class FeedPosition:
    """Where a client is in a topic: the hub epoch and the offset of the last event it has."""

    epoch: str
    offset: int


@final
@dataclass(frozen=True, slots=True)
class FeedEvent:
    """One published feed event.

    Attributes:
        topic: the feed topic.
        offset: its position in the topic (1 for the first event of a topic in an epoch).
        key: for state topics, what the value is of (a session id; ``"health"``); None for ordered.
        data: the event's data.
        time: publication time (seconds since the epoch).
        encoded: the JSON encoding of ``{"topic", "offset", "key", "data", "time"}``, made once.
    """

    topic: str
    offset: int
    key: str | None
    data: Mapping[str, Any]
    time: float
    encoded: bytes


@final
@dataclass(frozen=True, slots=True)
class FeedHubStatistics:
    """A snapshot of the hub's counters."""

    epoch: str
    topics: int
    clients: int
    published: int
    delivered: int
    frames: int
    conflated: int
    resyncs: int
    queued: int
    retired_topics: int = 0


@final
class _Slot:
    """A pending event in a client's queue; ``event`` is None once a newer value replaced it."""

    __slots__ = ("event",)

    def __init__(self, event: FeedEvent) -> None:
        self.event: FeedEvent | None = event


@final
class _Topic:
    __slots__ = ("history", "kind", "name", "offset", "state", "subscribers")

    def __init__(self, name: str, kind: TopicKind, history_size: int) -> None:
        self.name = name
        self.kind = kind
        self.offset = 0
        self.history: deque[FeedEvent] = deque(maxlen=history_size)
        self.state: dict[str | None, FeedEvent] = {}
        self.subscribers: set[int] = set()


@final
class _Client:
    __slots__ = (
        "cid",
        "dead",
        "on_ready",
        "ordered",
        "pending",
        "sent",
        "sessions",
        "state_slots",
        "topics",
    )

    def __init__(
        self, cid: int, sessions: frozenset[str] | None, on_ready: Callable[[], None]
    ) -> None:
        self.cid = cid
        self.sessions = sessions
        self.on_ready = on_ready
        self.pending: deque[_Slot | bytes] = deque()
        self.state_slots: dict[tuple[str, str | None], _Slot] = {}
        self.ordered = 0  # live ordered events pending
        self.dead = 0  # replaced slots still in ``pending``
        self.sent: dict[str, int] = {}  # topic -> offset of the last event given to the client
        self.topics: set[str] = set()

    def sees(self, event: FeedEvent) -> bool:
        return self.sessions is None or event.topic != "sessions" or event.key in self.sessions


@final
class FeedHub:
    """Decides what each feed client receives. Pure: no I/O, no clock, no trio.

    Args:
        epoch: identifies this hub's offsets; random when not given. Offsets from another epoch are
            never trusted for resuming.
        history_size: events kept per topic for resuming.
        client_queue_size: ordered events a client may have pending before its backlog is dropped
            and it is told to resync.
        max_frame_events: events per ``events`` frame at most.
        max_frame_bytes: a frame stops growing once it is this large (one event is always sent).
        max_state_keys: values kept per state topic; the least recently updated key is forgotten.
        max_snapshot_bytes: an ordered topic's snapshot holds its newest entries up to this size
            (at least one); a state topic's snapshot always holds every key.
        max_topics: topics kept with their history; past it, the least recently published topics
            nobody subscribes to (finished sessions' worklogs, typically) give up their history and
            keep only their offset, so a long-running daemon's memory stays bounded and offsets
            never go back.
        encode: JSON encoder returning UTF-8 bytes (e.g. ``orjson.dumps``).
    """

    def __init__(
        self,
        *,
        epoch: str | None = None,
        history_size: int = 1000,
        client_queue_size: int = 1000,
        max_frame_events: int = 500,
        max_frame_bytes: int = 256 * 1024,
        max_state_keys: int = 10_000,
        max_snapshot_bytes: int = 1024 * 1024,
        max_topics: int = 2000,
        encode: Encoder = _json_encode,
    ) -> None:
        for name, value in (
            ("history_size", history_size),
            ("client_queue_size", client_queue_size),
            ("max_frame_events", max_frame_events),
            ("max_frame_bytes", max_frame_bytes),
            ("max_state_keys", max_state_keys),
            ("max_snapshot_bytes", max_snapshot_bytes),
            ("max_topics", max_topics),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, not {value!r}")
        self._epoch = epoch if epoch is not None else secrets.token_hex(8)
        self._history_size = history_size
        self._queue_size = client_queue_size
        self._max_frame_events = max_frame_events
        self._max_frame_bytes = max_frame_bytes
        self._max_state_keys = max_state_keys
        self._max_snapshot_bytes = max_snapshot_bytes
        self._encode = encode
        self._max_topics = max_topics
        self._topics: dict[str, _Topic] = {}  # least recently published first
        self._retired: dict[str, int] = {}  # topic -> offset, for topics whose history was dropped
        self._clients: dict[int, _Client] = {}
        self._next_client = 1
        self._published = 0
        self._delivered = 0
        self._frames = 0
        self._conflated = 0
        self._resyncs = 0

    # ------------------------------------------------------------------ topics and publishing

    @property
    def epoch(self) -> str:
        """The hub's epoch: offsets are comparable only within one epoch."""
        return self._epoch

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            topic = _Topic(name, feed_topic_kind(name), self._history_size)
            topic.offset = self._retired.pop(name, 0)
            self._topics[name] = topic
            if len(self._topics) > self._max_topics:
                self._retire_idle_topics(keep=name)
        return topic

    def _retire_idle_topics(self, *, keep: str) -> None:
        excess = len(self._topics) - self._max_topics
        for name, topic in list(self._topics.items()):
            if excess <= 0:
                break
            if topic.subscribers or ":" not in name or name == keep:
                continue  # subscribed, one of the few engine-wide topics, or the one in use
            del self._topics[name]
            self._retired[name] = topic.offset
            excess -= 1

    def position(self, topic: str) -> FeedPosition:
        """The current position of ``topic`` (offset 0 when nothing was published to it)."""
        feed_topic_kind(topic)
        existing = self._topics.get(topic)
        offset = existing.offset if existing else self._retired.get(topic, 0)
        return FeedPosition(self._epoch, offset)

    def snapshot(self, topic: str, *, sessions: frozenset[str] | None = None) -> list[FeedEvent]:
        """What a fresh subscriber is given: the newest value per key for a state topic, the newest
        part of the history ring for an ordered one; ``sessions`` limits the ``sessions`` topic to
        those keys."""
        feed_topic_kind(topic)
        existing = self._topics.get(topic)
        if existing is None:
            return []
        if existing.kind is TopicKind.STATE:
            events = sorted(existing.state.values(), key=lambda e: e.offset)
        else:
            # The newest entries that fit in max_snapshot_bytes (at least the newest one).
            size = 0
            start = len(existing.history)
            for event in reversed(existing.history):
                size += len(event.encoded)
                if size > self._max_snapshot_bytes and start < len(existing.history):
                    break
                start -= 1
            events = list(existing.history)[start:]
        if sessions is not None and topic == "sessions":
            events = [e for e in events if e.key in sessions]
        return events

    def publish(
        self, topic: str, data: Mapping[str, Any], *, key: str | None = None, time: float = 0.0
    ) -> FeedEvent:
        """Assign the next offset of ``topic`` to ``data`` and queue it for every subscriber.

        State topics need a ``key``; ordered topics ignore it. Raises :class:`FeedTopicError` for an
        unknown topic name.
        """
        t = self._topic(topic)
        if next(reversed(self._topics)) != topic:
            self._topics[topic] = self._topics.pop(topic)  # most recently published last
        if t.kind is TopicKind.STATE:
            if key is None:
                key = topic
        else:
            key = None
        offset = t.offset + 1
        encoded = self._encode(
            {"topic": topic, "offset": offset, "key": key, "data": data, "time": time}
        )
        t.offset = offset  # only once encoding succeeded: offsets have no gaps
        event = FeedEvent(topic, offset, key, data, time, encoded)
        t.history.append(event)
        self._published += 1
        if t.kind is TopicKind.STATE:
            t.state.pop(key, None)
            t.state[key] = event
            if len(t.state) > self._max_state_keys:
                del t.state[next(iter(t.state))]
            for cid in t.subscribers:
                self._queue_state(self._clients[cid], event)
        else:
            for cid in tuple(t.subscribers):
                self._queue_ordered(self._clients[cid], t, event)
        return event

    def publish_engine_event(
        self, topic: str, payload: Mapping[str, Any], *, session_id: str | None, time: float
    ) -> FeedEvent | None:
        """Publish an engine event under its feed topic (see :func:`route_engine_event`).

        Returns None when the feed does not carry that engine topic.
        """
        route = route_engine_event(topic, payload, session_id)
        if route is None:
            return None
        return self.publish(route[0], payload, key=route[1], time=time)

    # ------------------------------------------------------------------ per-client queues

    def _push(self, client: _Client, item: _Slot | bytes) -> None:
        was_empty = not client.pending
        client.pending.append(item)
        if was_empty:
            client.on_ready()

    def _queue_state(self, client: _Client, event: FeedEvent) -> None:
        if not client.sees(event):
            return
        slot_key = (event.topic, event.key)
        old = client.state_slots.get(slot_key)
        if old is not None:
            # Conflate: the older pending value is never sent; the newest goes to the end so offsets
            # stay increasing within the topic.
            old.event = None
            client.dead += 1
            self._conflated += 1
        slot = _Slot(event)
        client.state_slots[slot_key] = slot
        self._push(client, slot)
        if client.dead > 64 and client.dead > len(client.pending) // 2:
            self._compact(client)

    def _queue_ordered(self, client: _Client, topic: _Topic, event: FeedEvent) -> None:
        if client.ordered >= self._queue_size:
            self._overflow(client, event.topic)
            return
        client.ordered += 1
        self._push(client, _Slot(event))

    def _compact(self, client: _Client) -> None:
        client.pending = deque(
            item for item in client.pending if isinstance(item, bytes) or item.event is not None
        )
        client.dead = 0

    def _overflow(self, client: _Client, incoming_topic: str) -> None:
        """Drop the client's ordered backlog; tell it to resync each topic that lost events."""
        lost: dict[str, None] = {incoming_topic: None}
        kept: deque[_Slot | bytes] = deque()
        for item in client.pending:
            if isinstance(item, bytes):
                kept.append(item)
            elif item.event is None:
                continue
            elif item.event.topic in STATE_TOPICS:
                kept.append(item)
            else:
                lost[item.event.topic] = None
        client.pending = kept
        client.dead = 0
        client.ordered = 0
        cid = client.cid
        for name in lost:
            self._topics[name].subscribers.discard(cid)
            client.topics.discard(name)
            self._resyncs += 1
            self._push(
                client,
                self._encode(
                    {
                        "type": "resync",
                        "topic": name,
                        "epoch": self._epoch,
                        "offset": client.sent.get(name, 0),
                        "reason": "slow_consumer",
                    }
                ),
            )

    def _get(self, client_id: int) -> _Client:
        try:
            return self._clients[client_id]
        except KeyError:
            raise FeedClientNotFoundError(f"no feed client {client_id}") from None

    def add_client(
        self, *, sessions: Iterable[str] | None = None, on_ready: Callable[[], None] = lambda: None
    ) -> int:
        """Register a client and return its id.

        Args:
            sessions: the session ids whose entries of the ``sessions`` topic it may see
                (None: all).
            on_ready: called synchronously whenever the client's queue goes from empty to
                non-empty.
        """
        cid = self._next_client
        self._next_client += 1
        allowed = None if sessions is None else frozenset(sessions)
        self._clients[cid] = _Client(cid, allowed, on_ready)
        return cid

    def remove_client(self, client_id: int) -> None:
        """Forget a client and its queue. Idempotent."""
        client = self._clients.pop(client_id, None)
        if client is None:
            return
        for name in client.topics:
            self._topics[name].subscribers.discard(client_id)

    def mute(self, client_id: int) -> None:
        """Stop queueing events for a client (it keeps what is queued, and control messages)."""
        client = self._get(client_id)
        for name in client.topics:
            self._topics[name].subscribers.discard(client_id)
        client.topics.clear()

    def subscriber_count(self, topic: str) -> int:
        """How many clients are subscribed to ``topic``."""
        existing = self._topics.get(topic)
        return len(existing.subscribers) if existing else 0

    def subscriptions(self, client_id: int) -> frozenset[str]:
        """The topics a client is subscribed to."""
        return frozenset(self._get(client_id).topics)

    def pending(self, client_id: int) -> int:
        """How many items (events and control messages) wait for a client."""
        c = self._get(client_id)
        return len(c.pending) - c.dead

    def pending_events(self, client_id: int) -> int:
        """How many events (not control messages) wait for a client."""
        c = self._get(client_id)
        return c.ordered + len(c.state_slots)

    def _drop_pending_topic(self, client: _Client, name: str) -> None:
        kept: deque[_Slot | bytes] = deque()
        for item in client.pending:
            if isinstance(item, bytes):
                kept.append(item)
            elif item.event is not None and item.event.topic != name:
                kept.append(item)
            elif item.event is not None and name not in STATE_TOPICS:
                client.ordered -= 1
        client.pending = kept
        client.dead = 0
        for slot_key in [k for k in client.state_slots if k[0] == name]:
            del client.state_slots[slot_key]

    def subscribe(
        self,
        client_id: int,
        topic: str,
        *,
        since: FeedPosition | None = None,
        request_id: str | int | None = None,
    ) -> bool:
        """Subscribe a client to a topic and queue what it needs to catch up.

        Queues a ``subscribed`` reply; then, when ``since`` is in this epoch and the history ring
        still holds every event after it, exactly those events (returns True); otherwise a
        ``snapshot`` message (returns False). Subscribing again to the same topic restarts it.
        Raises :class:`FeedTopicError` for an unknown topic.
        """
        client = self._get(client_id)
        t = self._topic(topic)
        if topic in client.topics:
            self._drop_pending_topic(client, topic)
        missed: list[FeedEvent] | None = None
        if since is not None and since.epoch == self._epoch and 0 <= since.offset <= t.offset:
            if since.offset == t.offset:
                missed = []
            elif t.history and t.history[0].offset <= since.offset + 1:
                missed = [e for e in t.history if e.offset > since.offset]
        recovered = missed is not None
        t.subscribers.add(client_id)
        client.topics.add(topic)
        client.sent[topic] = t.offset if since is None or missed is None else since.offset
        self._push(
            client,
            self._encode(
                {
                    "type": "subscribed",
                    "id": request_id,
                    "topic": topic,
                    "kind": t.kind.value,
                    "epoch": self._epoch,
                    "offset": t.offset,
                    "recovered": recovered,
                }
            ),
        )
        if missed is None:
            events = self.snapshot(topic, sessions=client.sessions)
            self._push(
                client,
                b'{"type":"snapshot","topic":'
                + self._encode(topic)
                + b',"epoch":'
                + self._encode(self._epoch)
                + b',"offset":'
                + str(t.offset).encode()
                + b',"events":['
                + b",".join(e.encoded for e in events)
                + b"]}",
            )
        else:
            # Replay exactly what was missed; a later value of the same key still conflates the
            # last replayed one.
            for event in missed:
                if not client.sees(event):
                    continue
                slot = _Slot(event)
                if event.key is not None:
                    client.state_slots[(event.topic, event.key)] = slot
                else:
                    client.ordered += 1
                self._push(client, slot)
        return recovered

    def unsubscribe(
        self, client_id: int, topic: str, *, request_id: str | int | None = None
    ) -> None:
        """Stop sending ``topic`` to the client (pending events of it are dropped); queue an
        ``unsubscribed`` reply. Unsubscribing from a topic it does not have is not an error."""
        client = self._get(client_id)
        feed_topic_kind(topic)
        if topic in client.topics:
            client.topics.discard(topic)
            self._topics[topic].subscribers.discard(client_id)
            self._drop_pending_topic(client, topic)
        self._push(client, self._encode({"type": "unsubscribed", "id": request_id, "topic": topic}))

    def send_control(self, client_id: int, message: Mapping[str, Any]) -> None:
        """Queue a control message (a reply, an error) for a client after what is queued."""
        self._push(self._get(client_id), self._encode(message))

    def take(self, client_id: int) -> bytes | None:
        """Return the next frame for a client, or None when nothing is pending.

        A control message is a frame of its own; consecutive events are joined into one ``events``
        frame of at most ``max_frame_events`` events and about ``max_frame_bytes`` bytes.
        """
        client = self._get(client_id)
        pending = client.pending
        while pending:
            head = pending[0]
            if isinstance(head, bytes):
                pending.popleft()
                self._frames += 1
                return head
            if head.event is None:
                pending.popleft()
                client.dead -= 1
                continue
            break
        else:
            return None
        parts: list[bytes] = []
        size = 0
        while pending and len(parts) < self._max_frame_events and size < self._max_frame_bytes:
            item = pending[0]
            if isinstance(item, bytes):
                break
            pending.popleft()
            event = item.event
            if event is None:
                client.dead -= 1
                continue
            if event.key is not None:
                slot_key = (event.topic, event.key)
                if client.state_slots.get(slot_key) is item:
                    del client.state_slots[slot_key]
            else:
                client.ordered -= 1
            client.sent[event.topic] = event.offset
            parts.append(event.encoded)
            size += len(event.encoded)
        self._frames += 1
        self._delivered += len(parts)
        return b'{"type":"events","events":[' + b",".join(parts) + b"]}"

    def statistics(self) -> FeedHubStatistics:
        """A snapshot of the hub's counters."""
        return FeedHubStatistics(
            epoch=self._epoch,
            topics=len(self._topics),
            clients=len(self._clients),
            published=self._published,
            delivered=self._delivered,
            frames=self._frames,
            conflated=self._conflated,
            resyncs=self._resyncs,
            queued=sum(len(c.pending) - c.dead for c in self._clients.values()),
            retired_topics=len(self._retired),
        )
