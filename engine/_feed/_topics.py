"""Feed topics: their names and kinds, where engine events go, and each topic's offsets, history ring and
newest value per key."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, final

from .._core._errors import ScribeError
from .._core._limits import preview

__all__ = [
    "STATE_TOPICS",
    "FeedEvent",
    "FeedPosition",
    "FeedTopicError",
    "Topic",
    "TopicKind",
    "TopicTable",
    "feed_payload",
    "feed_topic_kind",
    "route_engine_event",
    "snapshot_frame",
]

#: Feed topics whose events are the newest value of a key (conflated for slow clients).
STATE_TOPICS: Final = frozenset({"sessions", "health", "metrics"})
#: Prefixes of per-session ordered topics: ``worklog:<session_id>``, ``context:<session_id>``.
ORDERED_PREFIXES: Final = ("worklog:", "context:")
_MAX_TOPIC_LENGTH: Final = 200


class FeedTopicError(ScribeError, ValueError):
    """A topic name is not one of the feed's topics."""


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
    their names (one key each); an alert (``health.alert``) goes to ``health`` keyed
    ``alert:<name>``.
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
    if topic == "health.alert" and isinstance(payload.get("name"), str):
        return "health", f"alert:{payload['name']}"
    return None


@final
@dataclass(frozen=True, slots=True)
class FeedPosition:
    """Where a client is in a topic: the hub epoch and the offset of the last event it has, and for
    a worklog topic the seq of the last entry it has (None: not known), which holds across epochs."""

    epoch: str
    offset: int
    seq: int | None = None


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
class Topic:
    """One topic's state in the hub: its last offset, history ring, newest value per key and subscribers."""

    __slots__ = ("history", "kind", "name", "offset", "state", "subscribers")

    def __init__(self, name: str, kind: TopicKind, history_size: int) -> None:
        self.name = name
        self.kind = kind
        self.offset = 0
        self.history: deque[FeedEvent] = deque(maxlen=history_size)
        self.state: dict[str | None, FeedEvent] = {}
        self.subscribers: set[int] = set()

    def record(self, event: FeedEvent, max_state_keys: int) -> None:
        """Keep a just-published event in the history ring and, for a state topic, as its key's value."""
        self.history.append(event)
        if self.kind is TopicKind.STATE:
            self.state.pop(event.key, None)
            self.state[event.key] = event
            if len(self.state) > max_state_keys:
                del self.state[next(iter(self.state))]

    def snapshot(
        self, max_bytes: int, max_keys: int, keys: frozenset[str] | None = None
    ) -> tuple[list[FeedEvent], bool]:
        """The newest values of the ``max_keys`` most recently updated keys (of ``keys`` only, when
        given) of a state topic, or the newest history entries of an ordered one, that fit in
        ``max_bytes`` (at least one), oldest first; and whether some were left out."""
        pool: list[FeedEvent]
        if self.kind is TopicKind.STATE:
            pool = sorted(self.state.values(), key=lambda e: e.offset)
            if keys is not None:
                pool = [e for e in pool if e.key in keys]
            most = max_keys
        else:
            pool = list(self.history)
            most = len(pool)
        size = 0
        start = len(pool)
        for event in reversed(pool):
            size += len(event.encoded)
            if start < len(pool) and (size > max_bytes or len(pool) - start >= most):
                break
            start -= 1
        return pool[start:], start > 0

    def missed_since(self, offset: int) -> list[FeedEvent] | None:
        """The events after ``offset``, or None when the history ring no longer holds all of them."""
        if not 0 <= offset <= self.offset:
            return None
        if offset == self.offset:
            return []
        if self.history and self.history[0].offset <= offset + 1:
            return [e for e in self.history if e.offset > offset]
        return None


@final
class TopicTable:
    """The hub's topics, least recently published first. Past ``max_topics``, the least recently
    published topics nobody subscribes to give up their history and keep only their offset, so memory
    stays bounded and offsets never go back."""

    __slots__ = ("_history_size", "_max_topics", "_retired", "topics")

    def __init__(self, history_size: int, max_topics: int) -> None:
        self._history_size = history_size
        self._max_topics = max_topics
        self.topics: dict[str, Topic] = {}
        self._retired: dict[str, int] = {}  # topic -> offset, for topics whose history was dropped

    @property
    def retired_count(self) -> int:
        """Topics that gave up their history."""
        return len(self._retired)

    def offset(self, name: str) -> int:
        """The last offset of a topic (0 when nothing was published to it)."""
        existing = self.topics.get(name)
        return existing.offset if existing else self._retired.get(name, 0)

    def get(self, name: str) -> Topic:
        """The topic called ``name``, made on first use (raises :class:`FeedTopicError` for a bad name)."""
        topic = self.topics.get(name)
        if topic is None:
            topic = Topic(name, feed_topic_kind(name), self._history_size)
            topic.offset = self._retired.pop(name, 0)
            self.topics[name] = topic
            if len(self.topics) > self._max_topics:
                self._retire_idle(keep=name)
        return topic

    def touch(self, name: str) -> None:
        """Mark a topic as the most recently published."""
        if next(reversed(self.topics)) != name:
            self.topics[name] = self.topics.pop(name)

    def _retire_idle(self, *, keep: str) -> None:
        excess = len(self.topics) - self._max_topics
        for name, topic in list(self.topics.items()):
            if excess <= 0:
                break
            if topic.subscribers or ":" not in name or name == keep:
                continue  # subscribed, one of the few engine-wide topics, or the one in use
            del self.topics[name]
            self._retired[name] = topic.offset
            excess -= 1


def feed_payload(feed_topic: str, payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """An engine event's payload as the feed carries it: a session's description cut to a preview
    (:data:`~engine.DESCRIPTION_PREVIEW` characters, ``description_truncated: true``; the control
    socket's ``info`` has the whole text)."""
    description = payload.get("description") if feed_topic == "sessions" else None
    if not isinstance(description, str):
        return payload
    cut, truncated = preview(description)
    if not truncated:
        return payload
    return {**payload, "description": cut, "description_truncated": True}


def snapshot_frame(
    encode: Callable[[Any], bytes],
    topic: Topic,
    epoch: str,
    events: list[FeedEvent],
    truncated: bool,
    after_seq: int | None = None,
) -> bytes:
    """A ``snapshot`` frame of ``topic`` holding ``events`` (already encoded each); with
    ``after_seq``, a continuation: the worklog entries after that seq."""
    return (
        b'{"type":"snapshot","topic":'
        + encode(topic.name)
        + b',"epoch":'
        + encode(epoch)
        + b',"offset":'
        + str(topic.offset).encode()
        + b',"truncated":'
        + (b"true" if truncated else b"false")
        + (b"" if after_seq is None else b',"after_seq":' + str(after_seq).encode())
        + b',"events":['
        + b",".join(e.encoded for e in events)
        + b"]}"
    )
