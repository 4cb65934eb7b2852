"""Sessions across daemons that share one session store: the sweep that marks the sessions of gone
daemons orphaned (and publishes them), and releasing the captures of sessions this daemon no longer
owns (its lease expired), which writes nothing to them. :class:`~engine._scribe._scribe.Scribe` is
built on it."""

from __future__ import annotations

import logging
from typing import Any, Final

import trio

from .._context._provider import ContextProvider
from .._core._engine import Engine
from .._ports._session_store import LIVE_STATES, SessionRecord, SessionStore
from ._capture import Capture
from ._scribe_config import ScribeConfig

__all__ = ["ScribeOwnership", "record_event"]

_log = logging.getLogger(__name__)

#: The longest a released capture's tasks get to end.
_RELEASE_TIMEOUT: Final = 5.0


def record_event(record: SessionRecord) -> dict[str, Any]:
    """A stored session as a ``session.state`` event shows it (the fields of a live session's, and
    its owner)."""
    return {
        "id": record.id,
        "name": record.name,
        "state": record.state.value,
        "priority": record.priority.name.lower(),
        "kind": record.kind.value,
        "tags": list(record.tags),
        "description": record.description,
        "backlog_id": record.backlog_id,
        "parent": record.parent_id,
        "created_at": record.created_at,
        "last_activity": record.last_activity,
        "error": record.error,
        "owner": record.owner,
    }


class ScribeOwnership:
    """Which sessions this scribe's daemon owns, and what it does when that changes."""

    engine: Engine
    registry: SessionStore
    config: ScribeConfig
    context: ContextProvider | None
    _captures: dict[str, Capture]

    def _registry_changed(self) -> None:
        raise NotImplementedError

    async def sweep_orphans(self) -> list[SessionRecord]:
        """Mark orphaned the live sessions whose owning daemon is gone (or that this daemon owned
        under a lease it lost), publish each as a ``session.state`` event, and release the captures
        of sessions this daemon no longer owns. Returns the sessions marked.

        Raises:
            StoreError, DatabaseError: the store failed (nothing is released then).

        Cancellation: a mark is written whole or not at all; a release under way completes
        (shielded, bounded).
        """
        marked = await self.registry.mark_orphans()
        for r in marked:
            self.engine.publish_nowait("session.state", record_event(r), session_id=r.id)
            _log.warning("session %s marked orphaned: %s", r.id, r.error, extra={"session": r.id})
        if self._captures:
            mine = await self.registry.query(states=LIVE_STATES, owner=self.registry.owner_id)
            owned = {r.id for r in mine}
            for sid, cap in list(self._captures.items()):
                if sid not in owned and not cap.stopping:
                    await self._release(cap)
        if marked:
            self._registry_changed()
        return marked

    async def _release(self, cap: Capture) -> None:
        """Stop capturing a session this daemon no longer owns, writing nothing to it: no stop entry,
        no state (its new owner, or the sweep, decides those)."""
        sid = cap.session_id
        cap.stopping = True
        _log.warning(
            "session %s is no longer owned by this daemon (its lease expired): its capture stops "
            "and writes nothing more (%d carried entries are left in the journal)",
            sid,
            cap.carried,
            extra={"session": sid},
        )
        try:
            with trio.CancelScope(shield=True):
                cap.session.cancel()
                with trio.move_on_after(_RELEASE_TIMEOUT):
                    await cap.session.wait()
        finally:
            cap.stopped.set()
            self._captures.pop(sid, None)
            if self.context is not None:
                self.context.detach(sid)
        await trio.lowlevel.checkpoint_if_cancelled()
