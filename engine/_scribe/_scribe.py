"""The scribe: starts sessions on work trees, captures their work, ends them by rule, answers about them.
It wires protocols only; answers about stored sessions live in :mod:`._scribe_records`."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, final

import trio
import trio.lowlevel

from .._context._provider import ContextProvider
from .._core._admission import outside_session
from .._core._construction import NoPublicConstructor
from .._core._engine import Engine
from .._core._errors import ScribeError, SessionClosedError
from .._core._limits import check_backlog_id
from .._core._priority import Priority, coerce_priority
from .._core._session import Session
from .._core._session_info import check_tags, coerce_kind
from .._core._state import SessionKind, SessionState
from .._ports._entry_journal import EntryJournal
from .._ports._session_store import SessionRecord, SessionStore, check_agent_session_id
from .._ports._worklog_records import EndReason
from .._ports._worklog_store import WorklogStore
from ._agent_sessions import AgentStartLocks, restart_for_agent
from ._capture import Capture, WatchOpener
from ._ownership import ScribeOwnership
from ._scribe_config import ScribeConfig, check_file, check_timeout, mirror_path
from ._scribe_records import FsOpener, RepoOpener, ScribeRecords
from ._starting import (
    StartRequest,
    WorkTree,
    read_work_tree,
    record_failed_start,
    register,
    start_entry,
    wait_armed,
)
from ._summary_pipeline import SummaryPipeline

__all__ = ["Scribe"]

_log = logging.getLogger(__name__)
_UNSET: Any = object()


@final
class Scribe(ScribeRecords, ScribeOwnership, metaclass=NoPublicConstructor):
    """Sessions with capture. Get one from :func:`open_scribe`.

    Every method that names a session accepts any reference :meth:`resolve` takes.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        registry: SessionStore,
        store: WorklogStore,
        open_repo: RepoOpener,
        open_fs: FsOpener,
        open_watcher: WatchOpener,
        config: ScribeConfig,
        pipeline: SummaryPipeline | None,
        context: ContextProvider | None,
        journal: EntryJournal | None = None,
    ) -> None:
        self.engine = engine
        self.journal, self.replayer = journal, None  # the replayer: made by open_scribe
        self.registry, self.store = registry, store
        self.config = config
        self.pipeline = pipeline
        self.context = context
        self._open_repo = open_repo
        self._open_fs = open_fs
        self._open_watcher = open_watcher
        self._captures: dict[str, Capture] = {}
        self._not_adoptable: set[str] = set()
        self._nursery: trio.Nursery | None = None
        self._closing = False
        self._end_errors: list[str] = []
        self._agent_starts = AgentStartLocks()

    # -- starting --------------------------------------------------------------------------------

    async def start(
        self,
        repo: str | os.PathLike[str],
        *,
        name: str | None = None,
        backlog_id: str | None = None,
        kind: SessionKind | str = SessionKind.IMPLEMENTATION,
        priority: Priority | int | str = Priority.MEDIUM,
        tags: Iterable[str] = (),
        description: str = "",
        parent: str | None = None,
        related: Iterable[str] = (),
        idle_timeout: float | None = _UNSET,
        files: Iterable[str] = (),
        agent_session_id: str | None = None,
    ) -> SessionRecord:
        """Start a session on the work tree containing ``repo`` and begin capturing it.

        With ``agent_session_id`` (the id a coding agent uses for its own conversation), a start
        while that id's session is live on the same work tree returns that session (the other
        arguments are then ignored): an agent's start hook may fire twice.

        Args:
            repo: a directory inside a git work tree.
            name: a display name (default: the backlog id and branch).
            backlog_id: the backlog item (default: found in the branch name; one found there that
                is not a backlog id, :data:`~engine.BACKLOG_ID_PATTERN`, is left out).
            kind, priority, tags, description: as the session registry takes them.
            parent: a session this one forks or continues (any reference :meth:`resolve` takes).
            related: other sessions it relates to.
            idle_timeout: seconds without activity before it ends (default: the config's; None:
                never).
            files: root-relative files every context of this session shows.
            agent_session_id: the agent's own session id (:func:`~engine.check_agent_session_id`).

        Returns:
            The registered record (state active), or the agent's live one.

        Raises:
            InvalidArgumentError: a bad argument (a backlog id such as ``../x``; a
                :class:`~engine.FieldLimitError` for a description or tag list too long), or the
                agent session id's live session is on another work tree.
            NotARepositoryError: ``repo`` is not inside a git work tree.
            EngineClosedError: the engine is shutting down.

        Cancellation: a session half-started is cancelled and recorded as failed.
        """
        if self._closing:
            raise SessionClosedError("the scribe is shutting down")
        timeout = self.config.end_rules.idle_timeout if idle_timeout is _UNSET else idle_timeout
        scrub = self.config.privacy.scrub
        description = scrub(description) if isinstance(description, str) else description
        name = scrub(name) if isinstance(name, str) else name
        request = StartRequest(
            kind=coerce_kind(kind),
            priority=coerce_priority(priority),
            tags=check_tags(
                tags
                if isinstance(tags, str)
                else [scrub(t) if isinstance(t, str) else t for t in tags]
            ),
            idle_timeout=check_timeout(timeout),
            pinned=tuple(check_file(f) for f in files),
            agent_session_id=(
                None if agent_session_id is None else check_agent_session_id(agent_session_id)
            ),
        )
        explicit_backlog = check_backlog_id(backlog_id) if backlog_id else None
        async with self._agent_starts.hold(request.agent_session_id):
            if request.agent_session_id is not None:
                found = await restart_for_agent(
                    self.registry,
                    [sid for sid, cap in self._captures.items() if not cap.stopping],
                    self._open_repo,
                    request.agent_session_id,
                    Path(repo),
                )
                if found is not None:
                    return found
            return await self._start(
                Path(repo), request, name, explicit_backlog, description, parent, related
            )

    async def _start(
        self,
        repo: Path,
        request: StartRequest,
        name: str | None,
        explicit_backlog: str | None,
        description: str,
        parent: str | None,
        related: Iterable[str],
    ) -> SessionRecord:
        parent_record = await self.resolve(parent) if parent else None
        related_ids = [(await self.resolve(r)).id for r in related]
        tree = await read_work_tree(
            self._open_repo,
            repo,
            name=name,
            backlog_id=explicit_backlog,
            pattern=self.config.backlog_pattern,
        )
        live_parent = (
            parent_record.id
            if parent_record is not None and parent_record.id in self._captures
            else None
        )
        session = await self.engine.start_session(
            tree.label,
            priority=request.priority,
            kind=request.kind,
            tags=request.tags,
            parent=live_parent,
            backlog_id=tree.backlog_id,
            description=description,
        )
        try:
            record = await register(
                self.registry, session, tree, request, parent_record, related_ids
            )
            cap = self._capture(session, record, tree, request)
            await cap.add_entries([start_entry(record, tree, request)], carry_on_failure=False)
            self._run_capture(cap, request.idle_timeout)
            await wait_armed(cap)
        except BaseException as exc:
            self._captures.pop(session.id, None)
            if self.context is not None:
                self.context.detach(session.id)
            cleanup = self.engine.config.cleanup_timeout
            await record_failed_start(self.registry, session, exc, cleanup)
            raise
        self._registry_changed()
        return record

    def _capture(
        self,
        session: Session,
        record: SessionRecord,
        tree: WorkTree,
        request: StartRequest,
        first_seq: int = 0,
    ) -> Capture:
        """Make the session's capture and let the scribe and the context provider know of it."""
        fs = self._open_fs(Path(tree.git.root))
        cfg = self.config
        cap = Capture._create(
            engine=self.engine,
            record=record,
            session=session,
            repo=tree.git,
            fs=fs,
            state=tree.state,
            store=self.store,
            open_watcher=self._open_watcher,
            watcher_options=cfg.watcher_options,
            path_filter=cfg.path_filter,
            rules=dataclasses.replace(cfg.end_rules, idle_timeout=request.idle_timeout),
            mirror=mirror_path(cfg.mirror, record) if cfg.mirror else None,
            mirror_delay=cfg.mirror_delay,
            max_commits=cfg.max_commits,
            pipeline=self.pipeline,
            context=self.context,
            on_end=self._end_soon,
            journal=self.journal,
            max_backlog=cfg.max_backlog,
            privacy=cfg.privacy,
            first_seq=first_seq,
        )
        self._captures[record.id] = cap
        if self.context is not None:
            self.context.attach(
                self._context_target(record.id, tree.git, fs, tree.backlog_id, request.pinned)
            )
        return cap

    def _run_capture(self, cap: Capture, idle_timeout: float | None) -> None:
        """Start the capture's tasks in its session, and the guard that notices the session end."""
        session = cap.session
        session.start_service(cap.watch, name="scribe watcher", policy=self.config.restart_policy)
        session.start_soon(cap.flusher, name="scribe flusher")
        if idle_timeout is not None:
            session.start_soon(cap.idle, idle_timeout, name="scribe idle timer")
        if cap.mirror is not None:
            session.start_soon(cap.mirror_loop, name="scribe mirror")
        assert self._nursery is not None
        self._nursery.start_soon(self._guard, cap, name=f"scribe guard {cap.session_id[:8]}")

    # -- ending ----------------------------------------------------------------------------------

    def _end_soon(self, session_id: str, reason: EndReason, detail: str | None) -> None:
        if self._nursery is None or session_id not in self._captures:
            return
        self._nursery.start_soon(self._end_quietly, session_id, reason, detail)

    async def _end_quietly(self, session_id: str, reason: EndReason, detail: str | None) -> None:
        # Started from a session's task, this task inherited it as the current session; the stop
        # outlives that session, so its admissions must not go through it.
        with outside_session():
            try:
                await self.stop(session_id, reason, detail=detail)
            except ScribeError as exc:
                self._end_errors.append(f"{session_id}: {type(exc).__name__}: {exc}")
                self.engine.publish_nowait(
                    "scribe.error", {"error": repr(exc), "during": "end"}, session_id=session_id
                )

    async def _guard(self, cap: Capture) -> None:
        # Ends the capture when its engine session ends without stop() (a failure).
        with outside_session():
            await cap.session.wait()
            if not cap.stopping:
                failed = cap.session.state is SessionState.FAILED
                err = cap.session.error
                detail = None if err is None else f"{type(err).__name__}: {err}"
                reason = EndReason.FAILED if failed else EndReason.SHUTDOWN
                await self.stop(cap.session_id, reason, detail=detail)

    async def stop(
        self,
        session_id: str,
        reason: EndReason | str = EndReason.REQUESTED,
        *,
        detail: str | None = None,
    ) -> SessionRecord:
        """End a session: let its tasks finish, write its stop entry, record its final state (failed
        for ``reason == failed``, else completed) and ask for its final summary.

        A session stored as live or orphaned that no scribe captures (a dead daemon's) is just marked
        completed.

        Raises:
            SessionNotFoundError: no such session.
            SessionClosedError: it had already ended.

        Cancellation: the stop runs shielded (bounded by the stop grace plus the engine's cleanup
        timeout) and completes; the cancellation is delivered after.
        """
        why = EndReason(reason)
        cap = self._captures.get(session_id)
        if cap is None:
            record = await self.resolve(session_id)
            cap = self._captures.get(record.id)
            if cap is None:
                if record.state.is_final:
                    raise SessionClosedError(f"session {record.id} is already {record.state.value}")
                final_state = (
                    SessionState.FAILED if why is EndReason.FAILED else SessionState.COMPLETED
                )
                out = await self._set_state(record.id, final_state, detail or why.value)
                self._registry_changed()
                return out
        if cap.stopping:
            await cap.stopped.wait()
            return await self.registry.get(cap.session_id)
        cap.stopping = True
        result: SessionRecord | None = None
        try:
            with trio.CancelScope(shield=True) as scope:
                grace = self.config.stop_grace + 2 * self.engine.config.cleanup_timeout
                scope.deadline = trio.current_time() + grace
                result = await self._finish(cap, why, detail)
        finally:
            cap.stopped.set()
        await trio.lowlevel.checkpoint_if_cancelled()
        if result is None:
            raise ScribeError(f"stopping session {cap.session_id} took too long")
        return result

    async def _finish(self, cap: Capture, reason: EndReason, detail: str | None) -> SessionRecord:
        sid = cap.session_id
        await cap.session.close(timeout=self.config.stop_grace)
        failed = reason is EndReason.FAILED or cap.session.state is SessionState.FAILED
        if failed and detail is None and cap.session.error is not None:
            detail = f"{type(cap.session.error).__name__}: {cap.session.error}"
        errors: list[str] = []
        try:
            await cap.close_entries(reason, detail)
        except Exception as exc:
            errors.append(f"stop entry not stored: {type(exc).__name__}: {exc}")
            _log.warning("session %s: %s", sid, errors[-1], extra={"session": sid})
        if cap.mirror is not None:
            try:
                await cap.write_mirror()
            except Exception as exc:
                errors.append(f"mirror not written: {type(exc).__name__}: {exc}")
                _log.warning("session %s: %s", sid, errors[-1], extra={"session": sid})
        state = SessionState.FAILED if failed else SessionState.COMPLETED
        error = "; ".join(x for x in (detail if failed else None, *errors) if x) or None
        try:
            record = await self._set_state(sid, state, error)
        finally:
            self._captures.pop(sid, None)
            if cap.carried and self.replayer is not None:
                self.replayer.request_nowait()  # its journal is written once the store is back
            if self.context is not None:
                self.context.detach(sid)
            if self.pipeline is not None:
                self.pipeline.request_nowait(sid, final=True)
            self._registry_changed()
        return record

    async def aclose(self, reason: EndReason = EndReason.SHUTDOWN) -> None:
        """Stop every live capture (concurrently) with ``reason``. Idempotent.

        Cancellation: the stops are shielded and bounded; the call completes them.
        """
        self._closing = True
        async with trio.open_nursery() as nursery:
            for sid in list(self._captures):
                nursery.start_soon(self._end_quietly, sid, reason, None)
