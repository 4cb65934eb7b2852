"""The engine: the root of the nursery tree, its services, shared gates and event stream.

One concept, the root's lifecycle: opening, starting sessions, services, gates, events, statistics and
the ordered shutdown (sessions with grace, then services) share the root's nurseries and state, so they
are kept in one module; configuration, session arguments and the current session live beside it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, final

import trio

from ._adaptive import AdaptiveCapacity, AdaptiveStatistics
from ._admission import SessionContext, current
from ._config import EngineConfig
from ._construction import NoPublicConstructor
from ._errors import EngineClosedError, InvalidArgumentError, SessionNotFoundError
from ._events import Event, EventBus, Subscription
from ._latency import Latencies
from ._latency import _current as _current_latencies
from ._limiter import LimiterStatistics, PriorityLimiter
from ._priority import Priority
from ._session import Session
from ._session_info import SessionLimits, check_session_args
from ._state import SessionKind, SessionState
from ._supervisor import RestartPolicy, restart_publisher, supervise

__all__ = ["Engine", "EngineStatistics", "open_engine"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineStatistics:
    """A snapshot of the engine.

    Attributes:
        state: ``"running"``, ``"stopping"`` or ``"closed"``.
        sessions_by_state: live and recently finished sessions counted by state value.
        live_sessions: sessions not yet final.
        sessions_started: sessions started since the engine opened.
        gates: statistics of each named gate.
        events_published: events published on the stream.
        subscribers: open subscriptions.
        service_errors: engine services that gave up, by name, with their last error.
        uptime: seconds since the engine opened.
        adaptive: the adaptive capacities of the gates that have one, by gate name.
    """

    state: str
    sessions_by_state: dict[str, int]
    live_sessions: int
    sessions_started: int
    gates: dict[str, LimiterStatistics]
    events_published: int
    subscribers: int
    service_errors: dict[str, str]
    uptime: float
    adaptive: dict[str, AdaptiveStatistics] = field(default_factory=dict)


@final
class Engine(metaclass=NoPublicConstructor):
    """The root of the session tree. Get one from :func:`open_engine`.

    Attributes:
        latencies: the latency histograms of calls made in its tree (gates, sources, control
            calls), current in every task of it (:func:`engine.current_latencies`).
    """

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.latencies = Latencies()
        self._bus = EventBus()
        self._sessions: dict[str, Session] = {}
        self._finished: OrderedDict[str, Session] = OrderedDict()
        # the finished sessions by state (final: it never changes), kept as they come and go
        self._finished_states: Counter[str] = Counter()
        self._gates: dict[str, PriorityLimiter] = {}
        self._adaptive: dict[str, AdaptiveCapacity] = {}
        self._state = "running"
        self._sessions_nursery: trio.Nursery | None = None
        self._services_nursery: trio.Nursery | None = None
        self._sessions_done = trio.Event()
        self._started_at = time.monotonic()
        self._sessions_started = 0
        self._service_errors: dict[str, str] = {}
        self._token: trio.lowlevel.TrioToken | None = None
        self._root_scope: trio.CancelScope | None = None

    def __repr__(self) -> str:
        return f"<Engine {self._state} with {len(self._sessions)} live sessions>"

    # -- properties ------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once shutdown began: no new sessions or services are admitted."""
        return self._state != "running"

    @property
    def trio_token(self) -> trio.lowlevel.TrioToken:
        """The token of the trio run the engine lives in (for calls from other threads)."""
        assert self._token is not None
        return self._token

    def _next_session_id(self) -> str:
        # 64 random bits: unique across engines and restarts, and a short prefix names one session
        while True:
            sid = os.urandom(8).hex()
            if sid not in self._sessions and sid not in self._finished:
                return sid

    def _check_running(self) -> None:
        if self._state != "running":
            raise EngineClosedError(f"the engine is {self._state}")

    # -- gates -----------------------------------------------------------------------------------

    def gate(self, name: str) -> PriorityLimiter:
        """The shared gate called ``name`` (created on first use with its configured capacity; a
        gate named in ``config.adaptive_gates`` starts there and then adapts).

        Every adapter that uses one scarce resource (git processes, database connections, worker threads,
        summarizer capacity) admits its work through the same gate, so priorities are honoured across
        all sessions.
        """
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"gate name must be a non-empty string, not {name!r}")
        gate = self._gates.get(name)
        if gate is None:
            cap = self.config.gates.get(name, self.config.default_gate_capacity)
            gate = PriorityLimiter(
                cap, aging_interval=self.config.aging_interval, name=name, latencies=self.latencies
            )
            self._gates[name] = gate
            adaptive = self.config.adaptive_gates.get(name)
            if adaptive is not None:
                self._adaptive[name] = AdaptiveCapacity(gate, adaptive, initial=cap)
        return gate

    # -- sessions --------------------------------------------------------------------------------

    async def start_session(
        self,
        name: str,
        *,
        priority: Priority | int | str = Priority.MEDIUM,
        kind: SessionKind | str = SessionKind.IMPLEMENTATION,
        tags: Iterable[str] = (),
        parent: Session | str | None = None,
        backlog_id: str | None = None,
        description: str = "",
        limits: SessionLimits | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Start a session that lives in the engine's tree beyond the caller, and return it ACTIVE.

        A session with a ``parent`` (a fork or continuation) lives under it: cancelling the parent
        cancels it; its failure does not touch the parent. The session runs until :meth:`Session.close`,
        :meth:`Session.cancel`, a task failure, or engine shutdown.

        Raises:
            EngineClosedError: the engine is shutting down.
            InvalidArgumentError: a bad name, priority, kind, tag, limit or id.
            SessionNotFoundError: ``parent`` names no live session.
            SessionClosedError: ``parent`` is stopping or final.

        Cancellation: the call only checkpoints; if cancelled there, no session was started.
        """
        self._check_running()
        spec = check_session_args(
            name,
            priority=priority,
            kind=kind,
            tags=tags,
            backlog_id=backlog_id,
            description=description,
            limits=limits,
            session_id=session_id,
            default_limits=self.config.default_limits,
        )
        if session_id is not None and session_id in self._sessions:
            raise InvalidArgumentError(f"a session with id {session_id!r} already exists")
        if self.config.max_sessions is not None and len(self._sessions) >= self.config.max_sessions:
            raise InvalidArgumentError(
                f"the engine already runs {self.config.max_sessions} sessions"
            )
        parent_session: Session | None
        if parent is None:
            parent_session = None
        elif isinstance(parent, Session):
            if parent.engine is not self:
                raise InvalidArgumentError("parent belongs to another engine")
            parent_session = parent
        else:
            parent_session = self.get_session(parent)
        if parent_session is not None:
            parent_session._check_open()
        await trio.lowlevel.checkpoint_if_cancelled()
        session = Session._create(self, spec, parent_session)
        if parent_session is not None:
            parent_session._check_open()
            parent_session._spawn(session._run, (), f"session {spec.name}")
            parent_session._children[session.id] = session
        else:
            assert self._sessions_nursery is not None
            self._sessions_nursery.start_soon(session._run, name=f"session {spec.name}")
        self._sessions[session.id] = session
        self._sessions_started += 1
        session._set_state(SessionState.ACTIVE)
        return session

    def open_session(
        self,
        name: str,
        *,
        priority: Priority | int | str = Priority.MEDIUM,
        kind: SessionKind | str = SessionKind.IMPLEMENTATION,
        tags: Iterable[str] = (),
        parent: Session | str | None = None,
        backlog_id: str | None = None,
        description: str = "",
        limits: SessionLimits | None = None,
        session_id: str | None = None,
    ) -> SessionContext:
        """Async context manager: a session for the duration of the block (arguments as
        :meth:`start_session`).

        Inside the block the session is :func:`current_session`, so the block's own admissions use its
        priority. When the block ends normally, the session closes gracefully (its tasks finish) and ends
        COMPLETED, or FAILED if a task raised; the block does not raise for the session's failure, look
        at ``session.error``. When the block raises or is cancelled, the session is cancelled at once and
        the exception propagates after the session is final.
        """
        kwargs: dict[str, Any] = {
            "priority": priority,
            "kind": kind,
            "tags": tags,
            "parent": parent,
            "backlog_id": backlog_id,
            "description": description,
            "limits": limits,
            "session_id": session_id,
        }
        return SessionContext(self, name, kwargs)

    def sessions(self, *, include_finished: bool = False) -> list[Session]:
        """Live sessions (and, if asked, the recently finished ones) in start order."""
        out = list(self._sessions.values())
        if include_finished:
            out = list(self._finished.values()) + out
        return out

    def get_session(self, session_id: str) -> Session:
        """The live or recently finished session with this id.

        Raises:
            SessionNotFoundError: no such session.
        """
        s = self._sessions.get(session_id) or self._finished.get(session_id)
        if s is None:
            raise SessionNotFoundError(f"no session with id {session_id!r}")
        return s

    def tree(self) -> list[dict[str, Any]]:
        """The live session tree as nested JSON-ready dicts (each with ``children``)."""

        def node(s: Session) -> dict[str, Any]:
            d = s.info().as_dict()
            d["children"] = [node(c) for c in s.children]
            return d

        return [node(s) for s in self._sessions.values() if s.parent is None]

    def _session_finished(self, session: Session) -> None:
        self._sessions.pop(session.id, None)
        if self.config.finished_history > 0:
            states = self._finished_states
            again = self._finished.pop(session.id, None)
            if again is not None:
                states[again.state.value] -= 1
            self._finished[session.id] = session
            states[session.state.value] += 1
            while len(self._finished) > self.config.finished_history:
                _, gone = self._finished.popitem(last=False)
                states[gone.state.value] -= 1
        if not self._sessions and self._state != "running":
            self._sessions_done.set()

    # -- events ----------------------------------------------------------------------------------

    def publish_nowait(
        self, topic: str, payload: Mapping[str, Any], *, session_id: str | None = None
    ) -> Event:
        """Publish an event on the engine's stream. Never blocks; slow subscribers lose their oldest
        buffered events, never the publisher's time."""
        return self._bus.publish_nowait(topic, payload, session_id=session_id)

    def open_subscription(
        self, topics: Collection[str] | None = None, *, max_buffer: int = 1000
    ) -> AbstractAsyncContextManager[Subscription]:
        """Async context manager yielding a :class:`Subscription` to the engine's event stream.

        Args:
            topics: topic names to receive (a name ending in ``*`` matches by prefix); None for all.
            max_buffer: how many undelivered events to keep before dropping the oldest.

        Entering never waits. Cancellation of a reader leaves the subscription and its buffer intact
        until the block exits, when it is closed.
        """
        return self._bus.open_subscription(topics, max_buffer=max_buffer)

    # -- services --------------------------------------------------------------------------------

    def start_service(
        self,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        name: str | None = None,
        policy: RestartPolicy | None = None,
    ) -> None:
        """Start an engine-level service (registry writer, summarizer, feed hub, health monitor ...).

        It runs until shutdown, when it is cancelled after the sessions have stopped. It is restarted
        under ``policy`` (default: transient, 3 restarts in 5 s); past that its error is recorded in
        :meth:`statistics` and published on ``engine.service``, and the engine carries on.

        Raises:
            EngineClosedError: the engine is shutting down.
        """
        self._check_running()
        assert self._services_nursery is not None
        label: str = name or str(getattr(fn, "__qualname__", repr(fn)))
        self._services_nursery.start_soon(
            self._run_service, fn, args, label, policy or RestartPolicy(), name=f"service {label}"
        )

    async def _run_service(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        label: str,
        policy: RestartPolicy,
    ) -> None:
        on_restart = restart_publisher(self._bus, "engine.service", label)
        current.set(None)  # an engine service belongs to no session, whoever started it
        try:
            await supervise(fn, args, policy, name=label, on_restart=on_restart)
        except Exception as exc:
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            self._service_errors[label] = f"{type(cause).__name__}: {cause}"
            _log.error("engine service %s gave up: %s", label, exc, exc_info=exc)
            self._bus.publish_nowait(
                "engine.service", {"service": label, "gave_up": True, "error": repr(exc)}
            )

    # -- statistics ------------------------------------------------------------------------------

    def gates(self) -> Mapping[str, PriorityLimiter]:
        """Every gate made so far, live, by name (read its counters without a snapshot)."""
        return self._gates

    def statistics(self, *, gates: bool = True) -> EngineStatistics:
        """Return a snapshot of the engine's counters (``gates`` False: without the gates'
        statistics, ``gates`` left empty, for a caller that reads :meth:`gates` itself)."""
        by_state = {state: n for state, n in self._finished_states.items() if n}
        for s in self._sessions.values():
            by_state[s.state.value] = by_state.get(s.state.value, 0) + 1
        return EngineStatistics(
            state=self._state,
            sessions_by_state=by_state,
            live_sessions=len(self._sessions),
            sessions_started=self._sessions_started,
            gates={name: g.statistics() for name, g in self._gates.items()} if gates else {},
            adaptive={name: a.statistics() for name, a in self._adaptive.items()},
            events_published=self._bus.published,
            subscribers=self._bus.subscriber_count,
            service_errors=dict(self._service_errors),
            uptime=time.monotonic() - self._started_at,
        )

    # -- shutdown --------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Cancel the whole engine now (no grace). Safe to call from the engine's trio thread only;
        other threads use ``trio.from_thread.run_sync(engine.cancel, trio_token=engine.trio_token)``."""
        self._state = "stopping" if self._state == "running" else self._state
        if self._root_scope is not None:
            self._root_scope.cancel()

    async def aclose(self, *, grace: float | None = None) -> None:
        """Shut down: stop admitting, stop every session with ``grace`` (default
        ``config.shutdown_grace``) seconds to finish, then stop the services.

        Cleanup is shielded and bounded by ``grace + config.cleanup_timeout``, so it always ends; a
        cancelled caller still gets a finished shutdown, then its cancellation. Idempotent.
        """
        if self._state == "closed":
            await trio.lowlevel.checkpoint()
            return
        g = self.config.shutdown_grace if grace is None else grace
        if isinstance(g, bool) or not isinstance(g, int | float) or not g >= 0:
            raise InvalidArgumentError(f"grace must be a number >= 0, not {g!r}")
        self._state = "stopping"
        self._bus.publish_nowait("engine.state", {"state": "stopping"})
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + g + self.config.cleanup_timeout
            for s in list(self._sessions.values()):
                if s.parent is None:
                    s.cancel(g)
            if not self._sessions:
                self._sessions_done.set()
            await self._sessions_done.wait()
        if self._sessions_nursery is not None:
            self._sessions_nursery.cancel_scope.cancel()
        if self._services_nursery is not None:
            self._services_nursery.cancel_scope.cancel()
        self._state = "closed"
        self._bus.publish_nowait("engine.state", {"state": "closed"})
        await trio.lowlevel.checkpoint_if_cancelled()

    async def _serve_sessions(self, *, task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as nursery:
            self._sessions_nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    async def _serve_services(self, *, task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as nursery:
            self._services_nursery = nursery
            task_status.started()
            await trio.sleep_forever()


@asynccontextmanager
async def open_engine(config: EngineConfig | None = None) -> AsyncIterator[Engine]:
    """Open an engine for the duration of the block and shut it down at the end.

    With no config the engine uses defaults and needs no database (the engine never opens one; the
    ``scribe`` wiring layer connects adapters).

    When the block ends normally, shutdown is graceful (see :meth:`Engine.aclose`). When it raises or is
    cancelled, every session is cancelled at once; sessions still end in a final state, shielded cleanup
    is bounded by ``config.cleanup_timeout``, and the exception propagates.
    """
    cfg = config if config is not None else EngineConfig()
    if not isinstance(cfg, EngineConfig):
        raise InvalidArgumentError(f"config must be an EngineConfig, not {type(cfg).__name__}")
    engine = Engine._create(cfg)
    engine._token = trio.lowlevel.current_trio_token()
    body_error: BaseException | None = None
    latencies = _current_latencies.set(engine.latencies)
    try:
        async with trio.open_nursery() as root:
            engine._root_scope = root.cancel_scope
            await root.start(engine._serve_services)
            await root.start(engine._serve_sessions)
            engine._bus.publish_nowait("engine.state", {"state": "running"})
            try:
                yield engine
            except BaseException as exc:
                body_error = exc
                engine._state = "stopping"
                root.cancel_scope.cancel()
                raise
            else:
                await engine.aclose()
            finally:
                engine._state = "closed"
    except BaseExceptionGroup as group:
        # The block's own exception comes back wrapped by the root nursery: hand it back as it was.
        if body_error is not None and _only(group, body_error):
            raise body_error from body_error.__cause__
        raise
    finally:
        with contextlib.suppress(ValueError):  # left in another context: nothing to undo here
            _current_latencies.reset(latencies)


def _only(group: BaseExceptionGroup[BaseException], exc: BaseException) -> bool:
    for sub in group.exceptions:
        if isinstance(sub, BaseExceptionGroup):
            if not _only(sub, exc):
                return False
        elif sub is not exc:
            return False
    return True
