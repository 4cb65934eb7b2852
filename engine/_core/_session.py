"""A session: one node of the engine's nursery tree with its own cancel scope, nursery and limits.

One concept, the session's whole lifecycle: its states, tasks, services, pause and resume, stop
requests, cancel with grace, graceful close and the final state are kept in one module, so the
lifecycle reads top to bottom in one place. What describes a session without running it is in
``_session_info``; the current session and admission under it are in ``_admission``.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, final

import trio

from ._admission import SessionAdmission, current
from ._construction import NoPublicConstructor
from ._errors import InvalidArgumentError, SessionClosedError, TooManyTasksError
from ._limiter import PriorityLimiter
from ._priority import Priority, coerce_priority
from ._session_info import SessionInfo, SessionSpec, check_tags
from ._state import SessionState, check_transition
from ._supervisor import RestartPolicy, restart_publisher, supervise

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["Session"]

_log = logging.getLogger(__name__)

_S = SessionState


@final
class Session(metaclass=NoPublicConstructor):
    """A coding session running in the engine's tree. Get one from :meth:`Engine.open_session` or
    :meth:`Engine.start_session`.

    The session owns a cancel scope and a nursery. Its tasks run with the session as
    :func:`current_session`, so adapters admit their work under its priority and quota. An exception in
    any of its tasks ends the session as FAILED (kept in :attr:`error`) and touches nothing else;
    ``KeyboardInterrupt``, ``SystemExit`` and cancellation from outside pass through untouched.
    """

    __slots__ = (
        "__weakref__",
        "_cancel_requested",
        "_children",
        "_done",
        "_engine",
        "_finished",
        "_nursery",
        "_pending",
        "_resumed",
        "_runner",
        "_scope",
        "_state",
        "_stop_flag",
        "_stop_requested",
        "_tasks",
        "backlog_id",
        "created_at",
        "description",
        "error",
        "id",
        "kind",
        "last_activity",
        "limits",
        "name",
        "parent",
        "priority",
        "tags",
    )

    def __init__(self, engine: Engine, spec: SessionSpec, parent: Session | None) -> None:
        self._engine = engine
        self.id: str = spec.session_id or engine._next_session_id()
        self.name = spec.name
        self.priority = spec.priority
        self.kind = spec.kind
        self.tags = spec.tags
        self.parent = parent
        self.backlog_id = spec.backlog_id
        self.description = spec.description
        self.limits = spec.limits
        self.error: BaseException | None = None
        now = time.time()
        self.created_at = now
        self.last_activity = now
        self._state = _S.STARTING
        self._scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self._pending: (
            list[tuple[Callable[..., Awaitable[Any]], tuple[Any, ...], object]] | None
        ) = []
        self._children: dict[str, Session] = {}
        self._tasks = 0
        self._done: trio.Event | None = None  # created only when someone waits
        self._finished = False
        self._runner: trio.lowlevel.Task | None = None  # set while the runner waits for a close
        self._stop_flag = False
        self._stop_requested: trio.Event | None = None
        self._resumed: trio.Event | None = None
        self._cancel_requested = False

    def __repr__(self) -> str:
        return f"<Session {self.name!r} {self.id[:8]} {self._state.value} {self.priority.name}>"

    # -- state -----------------------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        """The session's current :class:`SessionState`."""
        return self._state

    @property
    def engine(self) -> Engine:
        """The engine this session lives in."""
        return self._engine

    @property
    def children(self) -> tuple[Session, ...]:
        """Live child sessions (forks and continuations)."""
        return tuple(self._children.values())

    @property
    def task_count(self) -> int:
        """How many of the session's tasks are running."""
        return self._tasks

    @property
    def stop_requested(self) -> bool:
        """True once the session was asked to stop (its tasks should finish and flush)."""
        return self._stop_flag

    async def wait_stop_requested(self) -> None:
        """Return once the session is asked to stop. Cancellation just ends the wait."""
        if self._stop_flag:
            await trio.lowlevel.checkpoint()
            return
        if self._stop_requested is None:
            self._stop_requested = trio.Event()
        await self._stop_requested.wait()

    def info(self) -> SessionInfo:
        """Return a frozen snapshot of the session."""
        return SessionInfo(
            id=self.id,
            name=self.name,
            state=self._state,
            priority=self.priority,
            kind=self.kind,
            tags=self.tags,
            description=self.description,
            backlog_id=self.backlog_id,
            parent_id=self.parent.id if self.parent is not None else None,
            children=tuple(self._children),
            created_at=self.created_at,
            last_activity=self.last_activity,
            tasks=self._tasks,
            error=None if self.error is None else f"{type(self.error).__name__}: {self.error}",
            limits=self.limits,
        )

    def touch(self) -> None:
        """Record activity now (used for idle timeouts)."""
        self.last_activity = time.time()

    def add_tags(self, *tags: str) -> None:
        """Add tags (validated; duplicates ignored)."""
        self.tags = check_tags((*self.tags, *tags))
        self._publish()

    def remove_tags(self, *tags: str) -> None:
        """Remove tags; absent ones are ignored."""
        drop = set(tags)
        self.tags = tuple(t for t in self.tags if t not in drop)
        self._publish()

    def set_priority(self, priority: Priority | int | str) -> None:
        """Change the priority used for admissions from now on."""
        self.priority = coerce_priority(priority)
        self._publish()

    def _set_state(self, target: SessionState) -> None:
        self._state = check_transition(self._state, target)
        self._publish()

    def _publish(self) -> None:
        bus = self._engine._bus
        if bus.has_subscribers:
            info = self.info()
            bus.publish_nowait("session.state", info.as_dict(), session_id=self.id)

    def _check_open(self) -> None:
        st = self._state
        if st.is_final or st is _S.STOPPING or st is _S.ORPHANED:
            raise SessionClosedError(f"{self!r} accepts no new work")

    def _spawn(
        self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], name: object
    ) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args, name=name)
        elif self._pending is not None:
            self._pending.append((fn, args, name))
        else:
            raise SessionClosedError(f"{self!r} accepts no new work")

    # -- work ------------------------------------------------------------------------------------

    def start_soon(
        self, fn: Callable[..., Awaitable[Any]], *args: Any, name: str | None = None
    ) -> None:
        """Start ``fn(*args)`` as a task of this session.

        Its exceptions fail the session (not the caller, not the engine). Cancelling the session cancels
        it; a grace period lets it finish first (see :meth:`cancel`).

        Raises:
            SessionClosedError: the session is stopping or final.
            TooManyTasksError: the session already runs ``limits.max_tasks`` tasks.
        """
        self._check_open()
        if self.limits.max_tasks is not None and self._tasks >= self.limits.max_tasks:
            raise TooManyTasksError(f"{self!r} already runs {self._tasks} tasks")
        self._spawn(self._run_task, (fn, args), name or fn)
        self._tasks += 1

    def start_service(
        self,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        name: str | None = None,
        policy: RestartPolicy | None = None,
    ) -> None:
        """Start a long-lived service task under a restart policy (default: transient, 3 restarts in 5 s).

        Past the policy's limit the session fails with ``RestartLimitError``; the engine carries on.
        """
        pol = policy if policy is not None else RestartPolicy()
        label: str = name or str(getattr(fn, "__qualname__", repr(fn)))

        on_restart = restart_publisher(
            self._engine._bus, "session.service", label, session_id=self.id
        )
        self.start_soon(
            functools.partial(supervise, name=label, on_restart=on_restart),
            fn,
            args,
            pol,
            name=label,
        )

    async def _run_task(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        current.set(self)
        try:
            await fn(*args)
        except Exception as exc:
            self._fail(exc)
        finally:
            self._tasks -= 1

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
            _log.warning(
                "session %s failed: %s: %s",
                self.id,
                type(exc).__name__,
                exc,
                exc_info=exc,
                extra={"session": self.id},
            )
        self._scope.cancel()

    def admit(self, limiter: PriorityLimiter) -> SessionAdmission:
        """Return an async context manager that holds one slot of ``limiter`` under this session's
        priority, quota and queue limit.

        While the session is paused, entering waits for it to resume. Cancellation while waiting takes
        nothing; a slot granted at that moment is released when the block exits.

        Raises (on entering):
            SessionClosedError: the session is final.
            AdmissionQueueFullError: the session already has ``limits.max_queued`` waiters there.
        """
        return SessionAdmission(self, limiter)

    # -- lifecycle -------------------------------------------------------------------------------

    def pause(self) -> None:
        """Hold back new admissions until :meth:`resume`. Running work goes on."""
        if self._state is not _S.PAUSED:
            self._set_state(_S.PAUSED)
            self._resumed = trio.Event()

    def resume(self) -> None:
        """Let admissions through again after :meth:`pause`."""
        if self._state is _S.PAUSED:
            self._set_state(_S.ACTIVE)
            if self._resumed is not None:
                self._resumed.set()
                self._resumed = None

    def cancel(self, grace: float = 0.0) -> None:
        """Stop the session and its subtree: a stop request now, a hard cancel after ``grace`` seconds.

        Tasks can watch :attr:`stop_requested` or :meth:`wait_stop_requested` to finish and flush within
        the grace period; whatever still runs then is cancelled. The session ends CANCELLED (FAILED if a
        task raised). Calling it on a final session does nothing; calling it again can only shorten the
        grace period. Does not wait: use :meth:`wait`.
        """
        if not isinstance(grace, int | float) or isinstance(grace, bool) or not grace >= 0:
            raise InvalidArgumentError(f"grace must be a number >= 0, not {grace!r}")
        if self._state.is_final:
            return
        self._cancel_requested = True
        self._request_stop()
        for child in tuple(self._children.values()):
            child.cancel(grace)
        if grace == 0:
            self._scope.cancel()
        else:
            self._scope.deadline = min(self._scope.deadline, trio.current_time() + grace)

    def _request_stop_subtree(self) -> None:
        # Children first, then this session: every descendant is asked, not only the direct ones, so an
        # idle grandchild cannot keep its parent (and so this session) waiting forever.
        for child in tuple(self._children.values()):
            child._request_stop_subtree()
        self._request_stop()

    def _request_stop(self) -> None:
        if self._state in (_S.ACTIVE, _S.PAUSED):
            self._set_state(_S.STOPPING)
        if self._resumed is not None:
            self._resumed.set()
            self._resumed = None
        self._stop_flag = True
        if self._stop_requested is not None:
            self._stop_requested.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            trio.lowlevel.reschedule(runner)

    async def close(self, *, timeout: float | None = None) -> None:
        """Finish gracefully: accept no new work, let running tasks and child sessions finish, end
        COMPLETED (FAILED if a task raised).

        Args:
            timeout: after this many seconds the remaining work is cancelled (None: wait for it).

        If the caller is cancelled while waiting, the session is cancelled too and the call waits (shielded,
        for at most the engine's cleanup timeout) until it is final, then re-raises.
        """
        if self._state.is_final:
            await trio.lowlevel.checkpoint()
            return
        self._request_stop_subtree()
        if timeout is not None:
            self._scope.deadline = min(self._scope.deadline, trio.current_time() + timeout)
        try:
            await self._wait_done()
        except trio.Cancelled:
            self.cancel()
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + self._engine.config.cleanup_timeout
                await self._wait_done()
            raise

    async def wait(self) -> None:
        """Return once the session is final (completed, failed or cancelled).

        Cancellation only ends the wait; the session carries on.
        """
        await self._wait_done()

    async def _wait_done(self) -> None:
        if self._finished:
            await trio.lowlevel.checkpoint()
            return
        if self._done is None:
            self._done = trio.Event()
        await self._done.wait()

    async def _run(self) -> None:
        completed = False
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    self._start_pending(nursery)
                    if not self._stop_flag:
                        # a bare park, not an Event: an idle session costs less memory
                        self._runner = trio.lowlevel.current_task()
                        await trio.lowlevel.wait_task_rescheduled(self._abort_runner)
                completed = True
        finally:
            self._finish(completed)

    def _start_pending(self, nursery: trio.Nursery) -> None:
        pending, self._pending = self._pending, None
        if pending:
            for fn, args, name in pending:
                nursery.start_soon(fn, *args, name=name)

    def _abort_runner(self, _: object) -> trio.lowlevel.Abort:
        self._runner = None
        return trio.lowlevel.Abort.SUCCEEDED

    def _finish(self, completed: bool) -> None:
        if self.error is not None:
            final = _S.FAILED
        elif completed and not self._cancel_requested:
            final = _S.COMPLETED
        else:
            final = _S.CANCELLED
        self._nursery = None
        self._pending = None
        if self._resumed is not None:
            self._resumed.set()
            self._resumed = None
        self._set_state(final)
        if self.parent is not None:
            self.parent._children.pop(self.id, None)
        self._engine._session_finished(self)
        self._finished = True
        if self._done is not None:
            self._done.set()
