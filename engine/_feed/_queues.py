"""Per-client feed queues: what waits for one client, with state values conflated, ordered events counted
against the client's bound, and frames cut from the head."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import final

from ._topics import STATE_TOPICS, FeedEvent

__all__ = ["ClientQueue", "Slot"]


@final
class Slot:
    """A pending event in a client's queue; ``event`` is None once a newer value replaced it."""

    __slots__ = ("event",)

    def __init__(self, event: FeedEvent) -> None:
        self.event: FeedEvent | None = event


@final
class ClientQueue:
    """One feed client: its subscriptions, what it was last given per topic, and its pending items
    (event slots and encoded control messages, in sending order)."""

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
        self.pending: deque[Slot | bytes] = deque()
        self.state_slots: dict[tuple[str, str | None], Slot] = {}
        self.ordered = 0  # live ordered events pending
        self.dead = 0  # replaced slots still in ``pending``
        self.sent: dict[str, int] = {}  # topic -> offset of the last event given to the client
        self.topics: set[str] = set()

    def sees(self, event: FeedEvent) -> bool:
        """Whether this client may see ``event`` (its ``sessions`` filter)."""
        return self.sessions is None or event.topic != "sessions" or event.key in self.sessions

    @property
    def live(self) -> int:
        """Pending items that will be sent (replaced slots not counted)."""
        return len(self.pending) - self.dead

    def push(self, item: Slot | bytes) -> None:
        """Append an item; tell the client when its queue goes from empty to non-empty."""
        was_empty = not self.pending
        self.pending.append(item)
        if was_empty:
            self.on_ready()

    def push_state(self, event: FeedEvent) -> bool:
        """Queue a state value, replacing the pending value of its key; True when one was replaced."""
        slot_key = (event.topic, event.key)
        old = self.state_slots.get(slot_key)
        if old is not None:
            # Conflate: the older pending value is never sent; the newest goes to the end so offsets
            # stay increasing within the topic.
            old.event = None
            self.dead += 1
        slot = Slot(event)
        self.state_slots[slot_key] = slot
        self.push(slot)
        if self.dead > 64 and self.dead > len(self.pending) // 2:
            self._compact()
        return old is not None

    def push_replayed(self, event: FeedEvent) -> None:
        """Queue an event replayed on resume; a later value of the same key still conflates it."""
        slot = Slot(event)
        if event.key is not None:
            self.state_slots[(event.topic, event.key)] = slot
        else:
            self.ordered += 1
        self.push(slot)

    def push_ordered(self, event: FeedEvent) -> None:
        """Queue an ordered event (the caller checked the bound)."""
        self.ordered += 1
        self.push(Slot(event))

    def _compact(self) -> None:
        self.pending = deque(
            item for item in self.pending if isinstance(item, bytes) or item.event is not None
        )
        self.dead = 0

    def drop_ordered(self, incoming_topic: str) -> list[str]:
        """Drop the ordered backlog (state values and control messages stay); return the topics that
        lost events, ``incoming_topic`` first, and forget the subscriptions to them."""
        lost: dict[str, None] = {incoming_topic: None}
        kept: deque[Slot | bytes] = deque()
        for item in self.pending:
            if isinstance(item, bytes):
                kept.append(item)
            elif item.event is None:
                continue
            elif item.event.topic in STATE_TOPICS:
                kept.append(item)
            else:
                lost[item.event.topic] = None
        self.pending = kept
        self.dead = 0
        self.ordered = 0
        for name in lost:
            self.topics.discard(name)
        return list(lost)

    def drop_topic(self, name: str) -> None:
        """Drop every pending event of one topic."""
        kept: deque[Slot | bytes] = deque()
        for item in self.pending:
            if isinstance(item, bytes):
                kept.append(item)
            elif item.event is not None and item.event.topic != name:
                kept.append(item)
            elif item.event is not None and name not in STATE_TOPICS:
                self.ordered -= 1
        self.pending = kept
        self.dead = 0
        for slot_key in [k for k in self.state_slots if k[0] == name]:
            del self.state_slots[slot_key]

    def take_control(self) -> bytes | None:
        """Pop a control message at the head (skipping replaced slots); None when an event or nothing
        is next."""
        pending = self.pending
        while pending:
            head = pending[0]
            if isinstance(head, bytes):
                pending.popleft()
                return head
            if head.event is None:
                pending.popleft()
                self.dead -= 1
                continue
            break
        return None

    def take_events(self, max_events: int, max_bytes: int) -> list[bytes]:
        """Pop consecutive events from the head, at most ``max_events`` and about ``max_bytes`` (at
        least one when an event is next); return their encodings."""
        pending = self.pending
        parts: list[bytes] = []
        size = 0
        while pending and len(parts) < max_events and size < max_bytes:
            item = pending[0]
            if isinstance(item, bytes):
                break
            pending.popleft()
            event = item.event
            if event is None:
                self.dead -= 1
                continue
            if event.key is not None:
                slot_key = (event.topic, event.key)
                if self.state_slots.get(slot_key) is item:
                    del self.state_slots[slot_key]
            else:
                self.ordered -= 1
            self.sent[event.topic] = event.offset
            parts.append(event.encoded)
            size += len(event.encoded)
        return parts
