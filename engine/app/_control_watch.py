"""The ``watch`` control operation: one session's worklog, summary, state and context events, as
they are published, for as long as the client keeps its connection (an MCP server turns them into resource
updates).

Each item is ``{"topic": ..., "seq": ..., "time": ...}`` plus, for a worklog entry, ``entry_seq``
and ``kind``: a signal that something changed, small whatever the entry holds (read the worklog
for the entry itself). A client reading too slowly loses the oldest signals, never the newest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, final

import trio

from .._core._engine import Engine
from .._core._events import Event, Subscription

__all__ = ["WATCH_TOPICS", "open_session_events"]

#: The topics a watch forwards.
WATCH_TOPICS: Final = ("session.worklog", "session.summary", "session.state", "session.context")
#: Signals buffered per watch before the oldest are dropped.
WATCH_BUFFER: Final = 256


def _item(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"topic": event.topic, "seq": event.seq, "time": event.time}
    if event.topic == "session.worklog":
        out["entry_seq"] = event.payload.get("seq")
        out["kind"] = event.payload.get("kind")
    elif event.topic == "session.state":
        out["state"] = event.payload.get("state")
    elif event.topic == "session.context":
        out["event"] = event.payload.get("event")
    return out


@final
class _SessionEvents:
    def __init__(self, subscription: Subscription, session_id: str) -> None:
        self._subscription = subscription
        self._session_id = session_id

    def __aiter__(self) -> _SessionEvents:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while True:
            try:
                event = await self._subscription.receive()
            except trio.EndOfChannel:
                raise StopAsyncIteration from None
            if event.session_id == self._session_id:
                return _item(event)


@asynccontextmanager
async def open_session_events(
    engine: Engine, session_id: str
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """The events of session ``session_id``, from entering the block on.

    Cancellation: a reader's cancellation loses nothing buffered; leaving the block unsubscribes.
    """
    async with engine.open_subscription(WATCH_TOPICS, max_buffer=WATCH_BUFFER) as subscription:
        yield _SessionEvents(subscription, session_id)
