"""Sessions across daemons that share one session store: the sweep that marks the sessions of gone
daemons orphaned (and publishes them), releasing the captures of sessions this daemon no longer owns
(its lease expired), which writes nothing to them, and adopting an orphaned session (its worklog
goes on where it stopped). :class:`~engine._scribe._scribe.Scribe` is built on it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

import trio

from .._context._provider import ContextProvider
from .._core._engine import Engine
from .._core._errors import IllegalTransitionError, InvalidArgumentError, ScribeError
from .._core._session import Session
from .._core._state import SessionState
from .._ports._git_errors import NotARepositoryError
from .._ports._session_store import LIVE_STATES, SessionRecord, SessionStore
from .._ports._worklog_records import EntryKind
from .._ports._worklog_store import WorklogStore
from ._capture import Capture
from ._scribe_config import ScribeConfig
from ._scribe_records import RepoOpener
from ._starting import StartRequest, WorkTree, read_work_tree, record_failed_start, wait_armed

__all__ = ["ScribeOwnership", "record_event"]

_log = logging.getLogger(__name__)

#: The longest a released capture's tasks get to end.
_RELEASE_TIMEOUT: Final = 5.0
#: The most orphaned sessions one pass of :meth:`ScribeOwnership.adopt_orphans` looks at.
_ADOPT_BATCH: Final = 100
#: What makes a session not adoptable here for good: its work tree is not here (or is another
#: one), or it is no longer an orphan (another daemon was first).
_NOT_HERE: Final = (InvalidArgumentError, IllegalTransitionError, NotARepositoryError, OSError)
#: The most sessions remembered as not adoptable here.
_NOT_ADOPTABLE_MAX: Final = 10_000


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
    store: WorklogStore
    config: ScribeConfig
    context: ContextProvider | None
    _captures: dict[str, Capture]
    _open_repo: RepoOpener
    _not_adoptable: set[str]

    def _registry_changed(self) -> None:
        raise NotImplementedError

    async def resolve(self, ref: str) -> SessionRecord:
        raise NotImplementedError

    def _capture(
        self,
        session: Session,
        record: SessionRecord,
        tree: WorkTree,
        request: StartRequest,
        first_seq: int = 0,
    ) -> Capture:
        raise NotImplementedError

    def _run_capture(self, cap: Capture, idle_timeout: float | None) -> None:
        raise NotImplementedError

    async def adopt(self, ref: str) -> SessionRecord:
        """Take over an orphaned session whose work tree this daemon can reach (the same machine, or a
        shared filesystem) and capture it from now on: its worklog goes on after the last stored
        entry (sequence numbers without gap or duplicate), starting with a ``session_start`` entry
        that names the owner it was adopted from.

        Raises:
            InvalidArgumentError: the session is not orphaned, has no work tree, or its work tree
                is another one from here.
            NotARepositoryError: its work tree cannot be reached from here.
            IllegalTransitionError: another daemon adopted it first.
            NotOwnerError: this daemon's lease has expired.
            SessionNotFoundError: nothing matches ``ref``.

        Cancellation: an adoption half done is cancelled and recorded as failed.
        """
        record = await self.resolve(ref)
        if record.state is not SessionState.ORPHANED:
            raise InvalidArgumentError(
                f"session {record.id} is {record.state.value}, not orphaned: only an orphaned "
                "session can be adopted"
            )
        if record.repo_path is None:
            raise InvalidArgumentError(f"session {record.id} has no work tree to capture")
        tree = await read_work_tree(
            self._open_repo,
            Path(record.repo_path),
            name=record.name,
            backlog_id=record.backlog_id,
            pattern=self.config.backlog_pattern,
        )
        if Path(tree.git.root) != Path(record.repo_path):
            raise InvalidArgumentError(
                f"session {record.id} watched {record.repo_path}, which is {tree.git.root} here"
            )
        request = StartRequest(
            kind=record.kind,
            priority=record.priority,
            tags=record.tags,
            idle_timeout=record.idle_timeout,
            pinned=(),
            agent_session_id=record.agent_session_id,
        )
        session = await self.engine.start_session(
            record.name,
            priority=record.priority,
            kind=record.kind,
            tags=record.tags,
            backlog_id=record.backlog_id,
            description=record.description,
            session_id=record.id,
        )
        try:
            adopted = await self.registry.adopt(record.id)
        except BaseException:
            session.cancel()
            raise
        try:
            cap = self._capture(
                session, adopted, tree, request, await self.store.last_seq(record.id)
            )
            payload = {
                "name": adopted.name,
                "adopted_from": record.owner,
                "repo": str(tree.git.root),
                "branch": tree.state.branch,
                "head": tree.state.head,
            }
            await cap.add_entries([(EntryKind.SESSION_START, payload)], carry_on_failure=False)
            self._run_capture(cap, request.idle_timeout)
            await wait_armed(cap)
        except BaseException as exc:
            self._captures.pop(record.id, None)
            if self.context is not None:
                self.context.detach(record.id)
            await record_failed_start(
                self.registry, session, exc, self.engine.config.cleanup_timeout
            )
            raise
        _log.info(
            "session %s adopted from %s", record.id, record.owner, extra={"session": record.id}
        )
        self._registry_changed()
        return adopted

    async def adopt_orphans(self, *, own_only: bool) -> list[SessionRecord]:
        """Adopt (:meth:`adopt`) the orphaned sessions this daemon lost when its lease ran out
        (``own_only``), or also those of other daemons, whose work tree is the same one here.

        A session that cannot be adopted here (its work tree is not here or is another one,
        another daemon was first) is logged and not tried again. One whose adoption failed for a
        passing reason (the store failed, this daemon's lease was being renewed) is tried again
        at the next call, and so is one whose released capture is still ending here. Returns the
        sessions adopted.

        Raises:
            StoreError, DatabaseError: the store failed (what was adopted stays adopted).

        Cancellation: an adoption under way is cancelled and recorded as failed; the ones before
        it stay adopted.
        """
        owner = self.registry.owner_id if own_only else None
        found = await self.registry.query(
            states=(SessionState.ORPHANED,), owner=owner, limit=_ADOPT_BATCH
        )
        live = {s.id for s in self.engine.sessions()}
        adopted: list[SessionRecord] = []
        for record in found:
            if record.id in self._not_adoptable or record.repo_path is None:
                continue
            if record.id in live or record.id in self._captures:
                continue  # released but still ending here: adopted by a later call
            try:
                adopted.append(await self.adopt(record.id))
            except _NOT_HERE as exc:
                self._not_adoptable.add(record.id)
                if len(self._not_adoptable) > _NOT_ADOPTABLE_MAX:
                    self._not_adoptable.pop()
                _log.info(
                    "orphaned session %s is not adopted here: %s",
                    record.id,
                    exc,
                    extra={"session": record.id},
                )
            except ScribeError as exc:
                _log.info(
                    "orphaned session %s is not adopted yet (tried again later): %s",
                    record.id,
                    exc,
                    extra={"session": record.id},
                )
        return adopted

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
            # Only the captures held before the query are judged by it: each of those was
            # registered before the query ran. One a start or adoption adds while the query is
            # under way may be missing from its answer and is still this daemon's.
            held = list(self._captures.items())
            mine = await self.registry.query(states=LIVE_STATES, owner=self.registry.owner_id)
            owned = {r.id for r in mine}
            for sid, cap in held:
                if sid not in owned and not cap.stopping and self._captures.get(sid) is cap:
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
