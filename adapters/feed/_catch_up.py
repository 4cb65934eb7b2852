"""Resuming a worklog by entry seq across epochs, on the server side: a client of ``worklog:<id>``
that gives ``since.seq`` in another epoch (the daemon restarted, or it comes from another daemon of
the database) gets the stored entries after that seq, read from the worklog store, then live ones
(:meth:`engine.FeedHub.subscribe_after_seq`)."""

from __future__ import annotations

import logging
from typing import Final, final

import trio

import engine
from engine import FeedHub, FeedPosition

__all__ = ["CATCH_UP_LIMIT", "CATCH_UP_TIMEOUT", "WorklogCatchUp"]

_log = logging.getLogger("adapters.feed")

#: The most stored entries one catch-up reads (a snapshot's byte bound may cut it further).
CATCH_UP_LIMIT: Final = 1000
#: The longest one catch-up read may take before the client gets the usual snapshot instead.
CATCH_UP_TIMEOUT: Final = 5.0


@final
class WorklogCatchUp:
    """Subscribes clients that resume a worklog by seq from another epoch.

    Args:
        hub: the server's hub.
        store: where the entries are read (the daemon's worklog store).
    """

    def __init__(self, hub: FeedHub, store: engine.WorklogStore) -> None:
        self._hub = hub
        self._store = store
        self._throttle = engine.LogThrottle(_log)

    async def subscribe(
        self,
        client_id: int,
        topic: str,
        since: FeedPosition,
        request_id: str | int | None,
    ) -> bool:
        """Subscribe the client from the entries after ``since.seq`` if that is how it must
        resume (a worklog topic, a seq, and a position the hub cannot replay from) and the store
        answers within :data:`CATCH_UP_TIMEOUT`; False: nothing was done (subscribe as usual).

        Cancellation: nothing is subscribed.
        """
        session = topic.removeprefix("worklog:")
        if since.seq is None or session == topic or self._hub.can_resume(topic, since):
            return False
        with trio.move_on_after(CATCH_UP_TIMEOUT):
            try:
                entries = await self._store.entries(
                    session, after_seq=since.seq, limit=CATCH_UP_LIMIT + 1
                )
            except engine.ScribeError as exc:
                self._throttle.failed("catch_up", "a worklog catch-up was not read: %s", exc)
                return False
            self._throttle.recovered("catch_up", "worklog catch-ups are read again")
            self._hub.subscribe_after_seq(
                client_id,
                topic,
                since.seq,
                [e.as_dict() for e in entries[:CATCH_UP_LIMIT]],
                truncated=len(entries) > CATCH_UP_LIMIT,
                request_id=request_id,
            )
            return True
        self._throttle.failed("catch_up", "a worklog catch-up took over %ss", CATCH_UP_TIMEOUT)
        return False
