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
  (``{"type": "events", "events": [...]}``). A frame holds what waits when it is taken: a server
  takes as soon as ``on_ready`` says a client's queue stopped being empty (an idle client then gets
  each event alone, at once), and a backlog (what gathered during a send) goes in few frames.
* Snapshots are bounded (``max_snapshot_keys``, ``max_snapshot_bytes``) and say ``truncated: true``
  when they leave something out; session descriptions reach the feed cut to a preview.
* A worklog followed by entry seq is continued from another epoch with the entries after it
  (:meth:`FeedHub.subscribe_after_seq`, :mod:`._continuation`).

One concept past the line limit: subscribing, resuming (by offset or by seq), snapshots, conflation
and resync keep one invariant together (what each client was sent, per topic), so they stay in one
module.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, final

from .._core._errors import ScribeError
from ._continuation import continuation
from ._queues import ClientQueue
from ._topics import (
    FeedEvent,
    FeedPosition,
    Topic,
    TopicKind,
    TopicTable,
    feed_payload,
    feed_topic_kind,
    route_engine_event,
    snapshot_frame,
)

__all__ = ["FeedClientNotFoundError", "FeedHub", "FeedHubStatistics"]

Encoder = Callable[[Any], bytes]


class FeedClientNotFoundError(ScribeError, LookupError):
    """The hub has no client with that id (it was removed, or never added)."""


def _json_encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


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
        max_snapshot_bytes: a snapshot holds its topic's newest entries up to this size (at least one).
        max_snapshot_keys: a state topic's snapshot holds its most recently updated keys, this many.
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
        max_snapshot_keys: int = 500,
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
            ("max_snapshot_keys", max_snapshot_keys),
            ("max_topics", max_topics),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, not {value!r}")
        self._epoch = epoch if epoch is not None else secrets.token_hex(8)
        self._queue_size = client_queue_size
        self._max_frame_events = max_frame_events
        self._max_frame_bytes = max_frame_bytes
        self._max_state_keys = max_state_keys
        self._max_snapshot_bytes = max_snapshot_bytes
        self._max_snapshot_keys = max_snapshot_keys
        self._encode = encode
        self._table = TopicTable(history_size, max_topics)
        self._topics = self._table.topics
        self._clients: dict[int, ClientQueue] = {}
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

    def position(self, topic: str) -> FeedPosition:
        """The current position of ``topic`` (offset 0 when nothing was published to it)."""
        feed_topic_kind(topic)
        return FeedPosition(self._epoch, self._table.offset(topic))

    def snapshot(self, topic: str, *, sessions: frozenset[str] | None = None) -> list[FeedEvent]:
        """What a fresh subscriber is given: the newest values of a state topic (one per key), the
        newest part of the history ring of an ordered one, within the snapshot bounds; ``sessions``
        limits the ``sessions`` topic to those keys."""
        return self._snapshot(topic, sessions)[0]

    def _snapshot(
        self, topic: str, sessions: frozenset[str] | None
    ) -> tuple[list[FeedEvent], bool]:
        feed_topic_kind(topic)
        existing = self._topics.get(topic)
        if existing is None:
            return [], False
        keys = sessions if topic == "sessions" else None
        return existing.snapshot(self._max_snapshot_bytes, self._max_snapshot_keys, keys)

    def publish(
        self, topic: str, data: Mapping[str, Any], *, key: str | None = None, time: float = 0.0
    ) -> FeedEvent:
        """Assign the next offset of ``topic`` to ``data`` and queue it for every subscriber.

        State topics need a ``key``; ordered topics ignore it. Raises :class:`FeedTopicError` for an
        unknown topic name.
        """
        t = self._table.get(topic)
        self._table.touch(topic)
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
        t.record(event, self._max_state_keys)
        self._published += 1
        if t.kind is TopicKind.STATE:
            for cid in t.subscribers:
                self._queue_state(self._clients[cid], event)
        else:
            for cid in tuple(t.subscribers):
                self._queue_ordered(self._clients[cid], event)
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
        return self.publish(route[0], feed_payload(route[0], payload), key=route[1], time=time)

    # ------------------------------------------------------------------ per-client queues

    def _queue_state(self, client: ClientQueue, event: FeedEvent) -> None:
        if client.sees(event) and client.push_state(event):
            self._conflated += 1

    def _queue_ordered(self, client: ClientQueue, event: FeedEvent) -> None:
        if client.ordered >= self._queue_size:
            self._overflow(client, event.topic)
            return
        client.push_ordered(event)

    def _overflow(self, client: ClientQueue, incoming_topic: str) -> None:
        """Drop the client's ordered backlog; tell it to resync each topic that lost events."""
        for name in client.drop_ordered(incoming_topic):
            self._topics[name].subscribers.discard(client.cid)
            self._resyncs += 1
            client.push(
                self._encode(
                    {
                        "type": "resync",
                        "topic": name,
                        "epoch": self._epoch,
                        "offset": client.sent.get(name, 0),
                        "reason": "slow_consumer",
                    }
                )
            )

    def _get(self, client_id: int) -> ClientQueue:
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
        self._clients[cid] = ClientQueue(cid, allowed, on_ready)
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
        return self._get(client_id).live

    def pending_events(self, client_id: int) -> int:
        """How many events (not control messages) wait for a client."""
        c = self._get(client_id)
        return c.ordered + len(c.state_slots)

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
        t = self._table.get(topic)
        missed: list[FeedEvent] | None = None
        if since is not None and since.epoch == self._epoch:
            missed = t.missed_since(since.offset)
        recovered = missed is not None
        self._join(
            client, client_id, t, t.offset if since is None or missed is None else since.offset
        )
        client.push(self._subscribed(t, request_id, recovered=recovered))
        if missed is None:
            events, truncated = self._snapshot(topic, client.sessions)
            client.push(snapshot_frame(self._encode, t, self._epoch, events, truncated))
        else:
            # Replay exactly what was missed; a later value of the same key still conflates the
            # last replayed one.
            for event in missed:
                if client.sees(event):
                    client.push_replayed(event)
        return recovered

    def _join(self, client: ClientQueue, client_id: int, t: Topic, sent: int) -> None:
        """Make the client a subscriber of ``t`` afresh, as having been sent up to ``sent``."""
        if t.name in client.topics:
            client.drop_topic(t.name)
        t.subscribers.add(client_id)
        client.topics.add(t.name)
        client.sent[t.name] = sent

    def _subscribed(self, t: Topic, request_id: str | int | None, *, recovered: bool) -> bytes:
        """The ``subscribed`` reply for topic ``t``."""
        return self._encode(
            {
                "type": "subscribed",
                "id": request_id,
                "topic": t.name,
                "kind": t.kind.value,
                "epoch": self._epoch,
                "offset": t.offset,
                "recovered": recovered,
            }
        )

    def can_resume(self, topic: str, since: FeedPosition) -> bool:
        """Whether :meth:`subscribe` with ``since`` would replay exactly the missed events (the
        same epoch, and the history ring still holds them)."""
        if since.epoch != self._epoch:
            return False
        t = self._topics.get(topic)
        return t is not None and t.missed_since(since.offset) is not None

    def subscribe_after_seq(
        self,
        client_id: int,
        topic: str,
        after_seq: int,
        stored: Sequence[Mapping[str, Any]],
        *,
        truncated: bool = False,
        request_id: str | int | None = None,
    ) -> None:
        """Subscribe a client to a worklog topic it follows by entry seq from another epoch (this
        daemon restarted, or the client comes from another daemon): queue ``subscribed`` with
        ``recovered: false``, then a ``snapshot`` with ``after_seq`` holding the entries after
        ``after_seq``: ``stored`` (read from the store by the caller, oldest first), then those of
        the history ring with a later seq, within the snapshot bound; then live events. The snapshot
        says ``truncated: true`` when the store had more than ``stored`` holds (``truncated``), or
        the bound cut it: what is left out comes after the snapshot's last seq and is read from the
        store (the control ``worklog``). Raises :class:`FeedTopicError` for an unknown topic.
        """
        client = self._get(client_id)
        t = self._table.get(topic)
        self._join(client, client_id, t, t.offset)
        client.push(self._subscribed(t, request_id, recovered=False))
        bound = self._max_snapshot_bytes
        events, cut = continuation(t, after_seq, stored, self._encode, bound, ring=not truncated)
        client.push(
            snapshot_frame(
                self._encode, t, self._epoch, events, truncated or cut, after_seq=after_seq
            )
        )

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
            client.drop_topic(topic)
        client.push(self._encode({"type": "unsubscribed", "id": request_id, "topic": topic}))

    def send_control(self, client_id: int, message: Mapping[str, Any]) -> None:
        """Queue a control message (a reply, an error) for a client after what is queued."""
        self._get(client_id).push(self._encode(message))

    def take(self, client_id: int) -> bytes | None:
        """Return the next frame for a client, or None when nothing is pending.

        A control message is a frame of its own; consecutive events are joined into one ``events``
        frame of at most ``max_frame_events`` events and about ``max_frame_bytes`` bytes.
        """
        client = self._get(client_id)
        control = client.take_control()
        if control is not None:
            self._frames += 1
            return control
        if not client.pending:
            return None
        parts = client.take_events(self._max_frame_events, self._max_frame_bytes)
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
            queued=sum(c.live for c in self._clients.values()),
            retired_topics=self._table.retired_count,
        )
