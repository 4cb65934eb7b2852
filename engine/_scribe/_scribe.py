"""The scribe: starts sessions on work trees, captures their work, ends them by rule, answers about them.

The scribe wires protocols only (a :class:`~engine.Git` opener, a :class:`~engine.WatcherFactory`, a
:class:`~engine.FileSystem` opener, a :class:`~engine.SessionStore` and a
:class:`~engine.WorklogStore`); the ``scribe serve`` command hands it the real adapters.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, final

import trio
import trio.lowlevel

from .._context._provider import Context, ContextProvider
from .._context._sources import ContextTarget
from .._core._admission import outside_session
from .._core._engine import Engine
from .._core._errors import (
    InvalidArgumentError,
    ScribeError,
    SessionClosedError,
    SessionNotFoundError,
)
from .._core._priority import Priority, coerce_priority
from .._core._session_info import check_tags, coerce_kind
from .._core._state import SessionKind, SessionState
from .._core._supervisor import RestartPolicy
from .._ports._fs import FileSystem
from .._ports._git import Git
from .._ports._session_store import (
    LIVE_STATES,
    SessionRecord,
    SessionStore,
    StoreConflictError,
    StoreNotFoundError,
)
from .._ports._worklog_store import WorklogStore
from ._capture import Capture, CaptureInfo, WatchOpener
from ._rules import (
    DEFAULT_BACKLOG_PATTERN,
    Aspect,
    EndRules,
    RepoState,
    backlog_id_from_branch,
)
from ._summary import Summary
from ._summary_pipeline import SummaryPipeline
from ._worklog import EndReason, EntryKind, WorklogEntry, check_note
from ._worklog_filter import PathFilter

__all__ = ["Scribe", "ScribeConfig", "ScribeError", "open_scribe"]

RepoOpener = Callable[[Path], Awaitable[Git]]
FsOpener = Callable[[Path], FileSystem]

_MIN_PREFIX: Final = 4
_ARM_TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True)
class ScribeConfig:
    """How the scribe captures.

    Attributes:
        path_filter: which changed files become entries.
        end_rules: when sessions end by themselves (``idle_timeout`` is the default of sessions
            started without one).
        backlog_pattern: the regular expression that finds a backlog id in a branch name.
        mirror: a root-relative path template for a markdown mirror of each worklog in its work tree
            (``{session}`` and ``{backlog}`` are filled in), or None for no mirror.
        mirror_delay: seconds the mirror waits to coalesce entries before it is rewritten.
        stop_grace: seconds a stopping session's tasks get to finish.
        max_commits: the most commit entries one HEAD move makes.
        watcher_options: keyword arguments for the watcher factory (``quiet``, ``cap`` ...).
        restart_policy: how a crashed watcher is restarted.
    """

    path_filter: PathFilter = field(default_factory=PathFilter)
    end_rules: EndRules = field(default_factory=EndRules)
    backlog_pattern: str = DEFAULT_BACKLOG_PATTERN
    mirror: str | None = None
    mirror_delay: float = 0.5
    stop_grace: float = 5.0
    max_commits: int = 50
    watcher_options: Mapping[str, Any] = field(default_factory=dict)
    restart_policy: RestartPolicy = field(
        default_factory=lambda: RestartPolicy(
            max_restarts=5, period=60.0, backoff_initial=0.2, backoff_max=5.0
        )
    )

    def __post_init__(self) -> None:
        if not isinstance(self.path_filter, PathFilter):
            raise InvalidArgumentError("path_filter must be a PathFilter")
        if not isinstance(self.end_rules, EndRules):
            raise InvalidArgumentError("end_rules must be EndRules")
        backlog_id_from_branch("x", self.backlog_pattern)
        if self.mirror is not None:
            _check_mirror(self.mirror)
        for what in ("mirror_delay", "stop_grace"):
            v = getattr(self, what)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0:
                raise InvalidArgumentError(f"{what} must be a number >= 0, not {v!r}")
        if isinstance(self.max_commits, bool) or not isinstance(self.max_commits, int):
            raise InvalidArgumentError("max_commits must be an int")
        if self.max_commits < 1:
            raise InvalidArgumentError("max_commits must be >= 1")


def _check_mirror(template: str) -> str:
    if not isinstance(template, str) or not template.strip():
        raise InvalidArgumentError(f"invalid mirror path {template!r}")
    p = Path(template)
    if p.is_absolute() or ".." in p.parts or p.parts[:1] == (".git",):
        raise InvalidArgumentError(f"the mirror path must stay inside the work tree: {template!r}")
    return template


def _mirror_path(template: str, record: SessionRecord) -> str:
    return template.replace("{session}", record.id).replace(
        "{backlog}", record.backlog_id or record.id
    )


def _check_timeout(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"idle timeout must be a number, not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"idle timeout must be positive, not {value!r}")
    return float(value)


_UNSET: Any = object()


@final
class Scribe:
    """Sessions with capture. Get one from :func:`open_scribe`.

    Every method that names a session accepts its id, a unique prefix of it (4 characters or more), or
    a backlog id (the newest session of that item).
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
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.store = store
        self.config = config
        self.pipeline = pipeline
        self.context = context
        self._open_repo = open_repo
        self._open_fs = open_fs
        self._open_watcher = open_watcher
        self._captures: dict[str, Capture] = {}
        self._nursery: trio.Nursery | None = None
        self._closing = False
        self._end_errors: list[str] = []

    # -- lookups ---------------------------------------------------------------------------------

    def live(self) -> list[str]:
        """Ids of the sessions this scribe captures now."""
        return list(self._captures)

    def capture_info(self, session_id: str) -> CaptureInfo | None:
        """A snapshot of the session's capture, or None when it is not live here."""
        cap = self._captures.get(session_id)
        return None if cap is None else cap.info()

    async def wait_stopped(self, session_id: str) -> None:
        """Return once the session is no longer captured here (at once if it is not).

        Cancellation just ends the wait.
        """
        cap = self._captures.get(session_id)
        if cap is None:
            await trio.lowlevel.checkpoint()
            return
        await cap.stopped.wait()
        while session_id in self._captures:
            await trio.lowlevel.checkpoint()

    async def resolve(self, ref: str) -> SessionRecord:
        """The stored session ``ref`` names: an id, a unique id prefix (4+ characters), or a
        backlog id (its newest session, live ones first).

        Raises:
            InvalidArgumentError: ``ref`` is empty or matches several sessions.
            SessionNotFoundError: nothing matches.
        """
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidArgumentError("a session reference must be a non-empty string")
        ref = ref.strip()
        try:
            return await self.registry.get(ref)
        except StoreNotFoundError:
            pass
        live_matches = [sid for sid in self._captures if sid.startswith(ref)]
        if len(ref) >= _MIN_PREFIX and len(live_matches) == 1:
            return self._captures[live_matches[0]].record
        by_backlog = await self.registry.query(backlog_id=ref.upper())
        if by_backlog:
            live = [r for r in by_backlog if r.state in LIVE_STATES]
            pool = live or by_backlog
            return max(pool, key=lambda r: r.created_at)
        if len(ref) >= _MIN_PREFIX:
            matches = [r for r in await self.registry.query() if r.id.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidArgumentError(
                    f"{ref!r} matches {len(matches)} sessions; give more of the id"
                )
        raise SessionNotFoundError(f"no session matches {ref!r}")

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
    ) -> SessionRecord:
        """Start a session on the work tree containing ``repo`` and begin capturing it.

        Args:
            repo: a directory inside a git work tree.
            name: a display name (default: the backlog id and branch).
            backlog_id: the backlog item (default: found in the branch name).
            kind, priority, tags, description: as the session registry takes them.
            parent: a session this one forks or continues (any reference :meth:`resolve` takes).
            related: other sessions it relates to.
            idle_timeout: seconds without activity before it ends (default: the config's; None:
                never).
            files: root-relative files every context of this session shows.

        Returns:
            The registered record (state active).

        Raises:
            InvalidArgumentError: a bad argument.
            NotARepositoryError: ``repo`` is not inside a git work tree.
            EngineClosedError: the engine is shutting down.

        Cancellation: a session half-started is cancelled and recorded as failed.
        """
        if self._closing:
            raise SessionClosedError("the scribe is shutting down")
        session_kind = coerce_kind(kind)
        prio = coerce_priority(priority)
        clean_tags = check_tags(tags)
        timeout = self.config.end_rules.idle_timeout if idle_timeout is _UNSET else idle_timeout
        timeout = _check_timeout(timeout)
        pinned = tuple(_check_file(f) for f in files)
        parent_record = await self.resolve(parent) if parent else None
        related_ids = [(await self.resolve(r)).id for r in related]
        git = await self._open_repo(Path(repo))
        status = await git.status()
        state = RepoState.from_status(status)
        backlog = (
            backlog_id.strip().upper()
            if backlog_id
            else backlog_id_from_branch(state.branch, self.config.backlog_pattern)
        )
        label = (
            name
            or " ".join(x for x in (backlog, state.branch or (state.head or "")[:8]) if x)
            or Path(git.root).name
        )
        live_parent = (
            parent_record.id
            if parent_record is not None and parent_record.id in self._captures
            else None
        )
        session = await self.engine.start_session(
            label,
            priority=prio,
            kind=session_kind,
            tags=clean_tags,
            parent=live_parent,
            backlog_id=backlog,
            description=description,
        )
        try:
            record = SessionRecord.from_info(
                session.info(),
                repo_path=Path(git.root),
                idle_timeout=timeout,
                related_ids=related_ids,
            )
            if parent_record is not None:
                record = dataclasses.replace(record, parent_id=parent_record.id)
            record = await self.registry.register(record)
            fs = self._open_fs(Path(git.root))
            cfg = self.config
            mirror = _mirror_path(cfg.mirror, record) if cfg.mirror else None
            cap = Capture(
                engine=self.engine,
                record=record,
                session=session,
                repo=git,
                fs=fs,
                state=state,
                store=self.store,
                open_watcher=self._open_watcher,
                watcher_options=cfg.watcher_options,
                path_filter=cfg.path_filter,
                rules=dataclasses.replace(cfg.end_rules, idle_timeout=timeout),
                mirror=mirror,
                mirror_delay=cfg.mirror_delay,
                max_commits=cfg.max_commits,
                pipeline=self.pipeline,
                context=self.context,
                on_end=self._end_soon,
            )
            self._captures[record.id] = cap
            if self.context is not None:
                self.context.attach(
                    ContextTarget(
                        session_id=record.id,
                        git=git,
                        fs=fs,
                        store=self.store,
                        registry=self.registry,
                        backlog_id=backlog,
                        files=tuple(dict.fromkeys((*self.context.role_files(backlog), *pinned))),
                        pinned=pinned,
                    )
                )
            await cap.add_entries(
                [
                    (
                        EntryKind.SESSION_START,
                        {
                            "name": record.name,
                            "backlog_id": backlog,
                            "kind": session_kind.value,
                            "priority": str(prio),
                            "tags": list(clean_tags),
                            "repo": str(git.root),
                            "branch": state.branch,
                            "head": state.head,
                            "parent": record.parent_id,
                        },
                    )
                ],
                carry_on_failure=False,
            )
            session.start_service(cap.watch, name="scribe watcher", policy=cfg.restart_policy)
            session.start_soon(cap.flusher, name="scribe flusher")
            if timeout is not None:
                session.start_soon(cap.idle, timeout, name="scribe idle timer")
            if mirror is not None:
                session.start_soon(cap.mirror_loop, name="scribe mirror")
            assert self._nursery is not None
            self._nursery.start_soon(self._guard, cap, name=f"scribe guard {record.id[:8]}")
            # Return once changes are seen (a watcher that cannot start is retried in the background).
            with trio.move_on_after(_ARM_TIMEOUT):
                async with trio.open_nursery() as wait:

                    async def armed() -> None:
                        await cap.armed.wait()
                        wait.cancel_scope.cancel()

                    async def ended() -> None:
                        await cap.stopped.wait()
                        wait.cancel_scope.cancel()

                    wait.start_soon(armed)
                    wait.start_soon(ended)
        except BaseException as exc:
            self._captures.pop(session.id, None)
            if self.context is not None:
                self.context.detach(session.id)
            session.cancel()
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + self.engine.config.cleanup_timeout
                try:
                    current = await self.registry.get(session.id)
                    await self.registry.set_state(
                        session.id,
                        SessionState.FAILED,
                        expected_version=current.version,
                        error=f"start failed: {type(exc).__name__}: {exc}",
                    )
                except ScribeError:
                    pass
            raise
        self._registry_changed()
        return record

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
                scope.deadline = (
                    trio.current_time()
                    + self.config.stop_grace
                    + 2 * self.engine.config.cleanup_timeout
                )
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
        if cap.mirror is not None:
            try:
                await cap.write_mirror()
            except Exception as exc:
                errors.append(f"mirror not written: {type(exc).__name__}: {exc}")
        state = SessionState.FAILED if failed else SessionState.COMPLETED
        error = "; ".join(x for x in (detail if failed else None, *errors) if x) or None
        try:
            record = await self._set_state(sid, state, error)
        finally:
            self._captures.pop(sid, None)
            if self.context is not None:
                self.context.detach(sid)
            if self.pipeline is not None:
                self.pipeline.request_nowait(sid, final=True)
            self._registry_changed()
        return record

    async def _set_state(self, sid: str, state: SessionState, error: str | None) -> SessionRecord:
        for _ in range(5):
            current = await self.registry.get(sid)
            if current.state is state:
                return current
            try:
                return await self.registry.set_state(
                    sid, state, expected_version=current.version, error=error
                )
            except StoreConflictError:
                continue
        raise StoreConflictError(sid, -1, -1)

    def _registry_changed(self) -> None:
        if self.context is not None:
            self.context.invalidate_all({Aspect.REGISTRY})

    async def aclose(self, reason: EndReason = EndReason.SHUTDOWN) -> None:
        """Stop every live capture (concurrently) with ``reason``. Idempotent.

        Cancellation: the stops are shielded and bounded; the call completes them.
        """
        self._closing = True
        async with trio.open_nursery() as nursery:
            for sid in list(self._captures):
                nursery.start_soon(self._end_quietly, sid, reason, None)

    # -- acting on sessions ----------------------------------------------------------------------

    def _live(self, record: SessionRecord) -> Capture:
        cap = self._captures.get(record.id)
        if cap is None:
            raise SessionClosedError(
                f"session {record.id} is {record.state.value} and not captured by this daemon"
            )
        return cap

    async def append_note(self, ref: str, text: str) -> WorklogEntry:
        """Append a user's note to a live session's worklog; return it once durable.

        Raises:
            InvalidArgumentError: an empty or oversized note.
            SessionNotFoundError, SessionClosedError: no such live session.
        """
        note = check_note(text)
        cap = self._live(await self.resolve(ref))
        entries = await cap.add_entries([(EntryKind.NOTE, {"text": note})], carry_on_failure=False)
        return entries[-1]

    async def tag(self, ref: str, tags: Collection[str], *, remove: bool = False) -> SessionRecord:
        """Add (or remove) tags of a session, live or not."""
        clean = check_tags(tags)
        if not clean:
            raise InvalidArgumentError("give at least one tag")
        record = await self.resolve(ref)
        if remove:
            out = await self.registry.remove_tags(record.id, clean)
        else:
            out = await self.registry.add_tags(record.id, clean)
        cap = self._captures.get(record.id)
        if cap is not None:
            cap.record = out
            if remove:
                cap.session.remove_tags(*clean)
            else:
                cap.session.add_tags(*clean)
        self._registry_changed()
        return out

    async def sessions(
        self, *, states: Collection[SessionState] | None = None, tags: Collection[str] = ()
    ) -> list[SessionRecord]:
        """Stored sessions with any of ``states`` and all of ``tags``, oldest first."""
        return await self.registry.query(states=states, tags=check_tags(tags))

    async def worklog(
        self, ref: str, *, limit: int | None = None
    ) -> tuple[SessionRecord, list[WorklogEntry]]:
        """A session's worklog (its last ``limit`` entries)."""
        record = await self.resolve(ref)
        entries = await self.store.entries(record.id, limit=limit, newest=limit is not None)
        return record, entries

    async def summary(self, ref: str) -> tuple[SessionRecord, Summary | None]:
        """A session's newest summary."""
        record = await self.resolve(ref)
        latest = self.pipeline.latest(record.id) if self.pipeline is not None else None
        if latest is None:
            latest = await self.store.latest_summary(record.id)
        return record, latest

    async def context_for(self, ref: str, role: str = "implementer") -> Context:
        """A session's context for ``role`` (from the live cache when the session is live here)."""
        if self.context is None:
            raise ScribeError("this scribe has no context provider")
        self.context.profile(role)
        record = await self.resolve(ref)
        if self.context.attached(record.id):
            return await self.context.context(record.id, role)
        git = fs = None
        if record.repo_path is not None:
            try:
                git = await self._open_repo(Path(record.repo_path))
                fs = self._open_fs(Path(git.root))
            except ScribeError:
                git = fs = None
        target = ContextTarget(
            session_id=record.id,
            git=git,
            fs=fs,
            store=self.store,
            registry=self.registry,
            backlog_id=record.backlog_id,
            files=self.context.role_files(record.backlog_id),
        )
        return await self.context.context(record.id, role, target=target)

    async def cleanup(
        self, older_than_days: float, *, states: Collection[SessionState] | None = None
    ) -> int:
        """Delete completed sessions (or sessions in ``states``, all final) older than the given days,
        with their worklogs and summaries; return how many."""
        if isinstance(older_than_days, bool) or not isinstance(older_than_days, int | float):
            raise InvalidArgumentError("days must be a number")
        if not math.isfinite(older_than_days) or older_than_days < 0:
            raise InvalidArgumentError("days must be >= 0")
        chosen = frozenset(states) if states is not None else frozenset({SessionState.COMPLETED})
        if not all(SessionState(s).is_final for s in chosen):
            raise InvalidArgumentError("cleanup removes finished sessions only")
        n = await self.registry.purge_finished(older_than_days, states=chosen)
        if n:
            self._registry_changed()
        return n

    async def validate(self) -> list[SessionRecord]:
        """Find and mark orphans: live sessions whose owning process is gone, and sessions this
        process owns as live that no capture runs for. Returns the sessions marked orphaned."""
        marked = list(await self.registry.mark_orphans())
        mine = await self.registry.query(states=LIVE_STATES, owner=self.registry.owner_id)
        for r in mine:
            if r.id not in self._captures:
                try:
                    marked.append(
                        await self.registry.set_state(
                            r.id,
                            SessionState.ORPHANED,
                            expected_version=r.version,
                            error="no capture runs for it",
                        )
                    )
                except StoreConflictError:
                    continue
        if marked:
            self._registry_changed()
        return marked


def _check_file(path: object) -> str:
    if not isinstance(path, str) or not path.strip():
        raise InvalidArgumentError(f"invalid file {path!r}")
    p = Path(path.strip())
    if p.is_absolute() or ".." in p.parts:
        raise InvalidArgumentError(f"a chosen file must be a path inside the work tree: {path!r}")
    return p.as_posix()


@asynccontextmanager
async def open_scribe(
    engine: Engine,
    *,
    registry: SessionStore,
    store: WorklogStore,
    open_repo: RepoOpener,
    open_fs: FsOpener,
    open_watcher: WatchOpener,
    config: ScribeConfig | None = None,
    pipeline: SummaryPipeline | None = None,
    context: ContextProvider | None = None,
) -> AsyncIterator[Scribe]:
    """A scribe for the duration of the block.

    At the end of the block every live session is stopped (reason ``shutdown``): its stop entry is
    written and its state recorded as completed. If the block is cancelled, the same happens shielded
    and bounded, then the cancellation propagates.
    """
    scribe = Scribe(
        engine,
        registry=registry,
        store=store,
        open_repo=open_repo,
        open_fs=open_fs,
        open_watcher=open_watcher,
        config=config or ScribeConfig(),
        pipeline=pipeline,
        context=context,
    )
    async with trio.open_nursery() as nursery:
        scribe._nursery = nursery
        try:
            yield scribe
        finally:
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = (
                    trio.current_time()
                    + scribe.config.stop_grace
                    + 3 * engine.config.cleanup_timeout
                )
                await scribe.aclose()
            nursery.cancel_scope.cancel()
