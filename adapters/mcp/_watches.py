"""Resource updates driven by the daemon's events: one ``watch`` per watched session, shared by all
the subscriptions naming it, turned into "this resource changed" for each subscribed URI.

A worklog entry or a state change updates the session's ``worklog`` resource, a summary its
``summary`` resource. Observers (the context cache) see every event of every watched session, and
``None`` when a watch opens or closes (what happened while it was closed was not seen). When the daemon goes away, the watch is opened again (with a growing pause,
at most :data:`RETRY_MAX` seconds); once it is back, every resource of the session is reported
changed, since what happened in between was not seen.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, final

import trio

from ..control._protocol import DaemonError, DaemonNotRunningError
from ._backend import McpBackend
from ._uris import RESOURCE_KINDS, ResourceUri

__all__ = ["SessionWatches"]

_log = logging.getLogger(__name__)

#: The longest pause, in seconds, between attempts to reach the daemon again.
RETRY_MAX: Final = 5.0
_RETRY_FIRST: Final = 0.2

Notify = Callable[[ResourceUri], Awaitable[None]]
#: Called with a watched session and each of its events (None: the watch opened or was lost).
Observer = Callable[[str, "dict[str, Any] | None"], None]


@final
class SessionWatches:
    """Watches sessions while something subscribes to their resources.

    Args:
        backend: the daemon.
        nursery: where the watches run (they end with it).
        notify: called with each resource that changed.
    """

    def __init__(self, backend: McpBackend, nursery: trio.Nursery, notify: Notify) -> None:
        self._backend = backend
        self._nursery = nursery
        self._notify = notify
        self._counts: dict[str, int] = {}
        self._scopes: dict[str, trio.CancelScope] = {}
        self._open: set[str] = set()
        self._observers: list[Observer] = []

    def observe(self, observer: Observer) -> None:
        """Call ``observer`` with every event of every watched session from now on."""
        self._observers.append(observer)

    def is_open(self, session: str) -> bool:
        """Whether the watch of ``session`` is open now (its events are being seen)."""
        return session in self._open

    def _seen(self, session: str, event: dict[str, Any] | None) -> None:
        for observer in self._observers:
            observer(session, event)

    @property
    def watched(self) -> frozenset[str]:
        """The sessions (as the URIs name them) watched now."""
        return frozenset(self._counts)

    def acquire(self, session: str) -> None:
        """Watch ``session`` (one more subscriber). Never blocks."""
        self._counts[session] = self._counts.get(session, 0) + 1
        if session not in self._scopes:
            scope = trio.CancelScope()
            self._scopes[session] = scope
            self._nursery.start_soon(self._watch, session, scope)

    def release(self, session: str) -> None:
        """One subscriber of ``session`` fewer; the last one stops its watch. Never blocks."""
        left = self._counts.get(session, 0) - 1
        if left > 0:
            self._counts[session] = left
            return
        self._counts.pop(session, None)
        scope = self._scopes.pop(session, None)
        if scope is not None:
            scope.cancel()

    async def _changed(self, session: str, kinds: tuple[str, ...]) -> None:
        for kind in kinds:
            await self._notify(ResourceUri(session, "summary" if kind == "summary" else "worklog"))

    async def _watch(self, session: str, scope: trio.CancelScope) -> None:
        try:
            with scope:
                await self._watch_until_cancelled(session)
        finally:
            if self._scopes.get(session) is scope:
                del self._scopes[session]

    async def _watch_until_cancelled(self, session: str) -> None:
        pause = _RETRY_FIRST
        missed = False
        while True:
            try:
                async with self._backend.open_watch("watch", {"session": session}) as events:
                    pause = _RETRY_FIRST
                    self._open.add(session)
                    self._seen(session, None)
                    try:
                        if missed:
                            await self._changed(session, RESOURCE_KINDS)
                        missed = True
                        async for event in events:
                            item = event if isinstance(event, dict) else {}
                            self._seen(session, item)
                            topic = item.get("topic")
                            if topic == "session.context":
                                continue  # no resource of its own
                            kind = "summary" if topic == "session.summary" else "worklog"
                            await self._changed(session, (kind,))
                    finally:
                        self._open.discard(session)
                        self._seen(session, None)
            except (DaemonNotRunningError, TimeoutError, OSError) as exc:
                _log.debug("watch of %s: the daemon is unreachable (%s)", session, exc)
                missed = True
            except DaemonError as exc:
                # an unknown session stays unknown; anything else may pass
                if exc.type == "SessionNotFoundError":
                    _log.debug("watch of %s refused: %s", session, exc)
                    return
                _log.warning("watch of %s refused: %s", session, exc)
            await trio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX)
