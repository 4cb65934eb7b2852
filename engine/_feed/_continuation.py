"""A worklog resumed by entry seq from another epoch: the events of the snapshot that continues it.

No I/O: the entries after the client's seq come from the store (read by the caller), then the ones
of the topic's history ring with a later seq, within the snapshot's byte bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._topics import FeedEvent, Topic

__all__ = ["continuation"]


def continuation(
    topic: Topic,
    after_seq: int,
    stored: Sequence[Mapping[str, Any]],
    encode: Callable[[Any], bytes],
    max_bytes: int,
    *,
    ring: bool = True,
) -> tuple[list[FeedEvent], bool]:
    """The entries after ``after_seq``, oldest first: ``stored`` (stored entries as their
    ``as_dict``), then the history ring's (unless ``ring`` is false: the store had more than
    ``stored``), each seq once; at least one, at most ``max_bytes`` of them; and whether the bound
    cut some (what follows is read from the store)."""
    events: list[FeedEvent] = []
    size = 0
    last = after_seq

    def take(event: FeedEvent) -> bool:
        nonlocal size, last
        size += len(event.encoded)
        if events and size > max_bytes:
            return False
        events.append(event)
        last = event.data["seq"]
        return True

    for data in stored:
        seq = data.get("seq")
        if isinstance(seq, int) and seq > last:
            at = data.get("created_at", 0.0)
            time = float(at) if isinstance(at, int | float) else 0.0
            encoded = encode(
                {"topic": topic.name, "offset": 0, "key": None, "data": data, "time": time}
            )
            if not take(FeedEvent(topic.name, 0, None, data, time, encoded)):
                return events, True
    for event in topic.history if ring else ():
        seq = event.data.get("seq")
        if isinstance(seq, int) and seq > last and not take(event):
            return events, True
    return events, False
