"""What other daemons write, published on this engine's bus: change notices from a shared store
become ``session.state``, ``session.worklog`` and ``session.summary`` events, so a feed client (or
an MCP resource watcher) of any daemon sees every session. Entries are read from the store by seq
and published once each, in order; after a break in the notices it catches up from the store."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Final, final

from .._core._engine import Engine
from .._core._state import SessionState
from .._ports._change_notices import ChangeNotice, NoticeKind
from .._ports._session_store import LIVE_STATES, SessionStore, StoreNotFoundError
from .._ports._worklog_store import WorklogStore
from ._ownership import record_event

__all__ = ["RemoteRelay"]

_log = logging.getLogger(__name__)

#: Sessions whose last published seq is remembered (the least recently heard of are forgotten).
_REMEMBERED: Final = 10_000
#: Entries read per query.
_CHUNK: Final = 500
#: The most sessions of other daemons a catch-up looks at.
_RESYNC_LIMIT: Final = 1000


@final
class RemoteRelay:
    """Publishes on ``engine``'s bus the changes other daemons make to sessions this one does not
    capture (``captured()``: the ones it does; their events are published by their captures).

    Args:
        engine: the engine whose bus gets the events.
        registry: the shared session registry.
        store: the shared worklog store.
        captured: the ids of the sessions this daemon captures now.
    """

    def __init__(
        self,
        engine: Engine,
        registry: SessionStore,
        store: WorklogStore,
        captured: Callable[[], Collection[str]],
    ) -> None:
        self._engine = engine
        self._registry = registry
        self._store = store
        self._captured = captured
        self._published: OrderedDict[str, int] = OrderedDict()  # session -> last seq published
        self._summaries: OrderedDict[str, int] = OrderedDict()  # session -> last version published

    async def handle(self, notice: ChangeNotice) -> None:
        """Publish what ``notice`` says changed.

        Raises:
            StoreError, DatabaseError: the store failed (the notice is lost; the next one of the
                session, or a resync, catches up).

        Cancellation: events already published stay published; nothing else happens.
        """
        if notice.kind is NoticeKind.RESYNC:
            await self._resync(notice.since)
            return
        sid = notice.session_id
        if sid is None or notice.owner == self._registry.owner_id or sid in self._captured():
            return  # this daemon's own: published by its captures
        if notice.kind is NoticeKind.SESSION:
            await self._publish_state(sid)
        elif notice.kind is NoticeKind.SUMMARY:
            await self._publish_summary(sid)
        else:
            await self._publish_entries(sid, notice.first_seq - 1, notice.last_seq)

    async def _publish_summary(self, sid: str) -> None:
        """Publish the latest summary of ``sid`` if it is newer than the last one published."""
        summary = await self._store.latest_summary(sid)
        if summary is None or self._summaries.get(sid, 0) >= summary.version:
            return
        self._summaries[sid] = summary.version
        self._summaries.move_to_end(sid)
        while len(self._summaries) > _REMEMBERED:
            self._summaries.popitem(last=False)
        self._engine.publish_nowait(
            "session.summary",
            {"version": summary.version, "final": summary.final, "last_seq": summary.last_seq},
            session_id=sid,
        )

    async def _publish_state(self, sid: str) -> None:
        try:
            record = await self._registry.get(sid)
        except StoreNotFoundError:
            self._published.pop(sid, None)
            return
        self._engine.publish_nowait("session.state", record_event(record), session_id=sid)

    async def _publish_entries(self, sid: str, before_first: int, last: int | None) -> None:
        """Publish the entries of ``sid`` after the last one published (or after ``before_first``
        for a session not heard of yet) up to ``last`` (None: all there are)."""
        done = self._published.get(sid, before_first)
        while last is None or done < last:
            entries = await self._store.entries(sid, after_seq=done, limit=_CHUNK)
            for e in entries:
                if last is not None and e.seq > last:
                    break
                self._engine.publish_nowait("session.worklog", e.as_dict(), session_id=sid)
                done = e.seq
            if len(entries) < _CHUNK:
                break
        self._published[sid] = done
        self._published.move_to_end(sid)
        while len(self._published) > _REMEMBERED:
            self._published.popitem(last=False)

    async def _resync(self, since: float) -> None:
        """After a break: the state of every live or orphaned session of another daemon, its latest
        summary if it is newer than the last published, and their entries after the last published
        (from the first for sessions made during the break)."""
        _log.info("change notices resume: catching up from the store")
        states = {*LIVE_STATES, SessionState.ORPHANED}
        found = await self._registry.query(states=states, limit=_RESYNC_LIMIT)
        captured = self._captured()
        for record in found:
            if record.id in captured:
                continue
            self._engine.publish_nowait("session.state", record_event(record), session_id=record.id)
            await self._publish_summary(record.id)
            if record.id in self._published:
                await self._publish_entries(record.id, 0, None)
            elif record.created_at >= since:
                await self._publish_entries(record.id, 0, None)
        for sid in [s for s in self._published if s not in {r.id for r in found}]:
            if sid not in captured:
                await self._publish_entries(sid, 0, None)
