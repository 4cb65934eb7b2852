"""The current session: which session a task works for, the slots it takes on a limiter under that
session's priority, quota and queue limit, and the ``open_session`` block that makes a session current."""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Hashable, Iterator
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, final

import trio

from ._errors import InvalidArgumentError, ReentryError, SessionClosedError
from ._limiter import PriorityLimiter
from ._priority import Priority
from ._state import SessionState

if TYPE_CHECKING:
    from ._engine import Engine
    from ._session import Session

__all__ = [
    "SessionAdmission",
    "SessionContext",
    "admit",
    "current",
    "current_session",
    "outside_session",
]

#: The session the running task works for (set by the session runner and ``open_session``).
current: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "scribe_current_session", default=None
)


def current_session() -> Session | None:
    """The session whose task is running now (set in every session task and ``open_session`` body)."""
    return current.get()


@contextlib.contextmanager
def outside_session() -> Iterator[None]:
    """Run the block as if no session were current.

    For work that a session's task starts but that must outlive the session or not count against
    it (ending the session, writing its final record): admissions inside the block do not go through
    the session, and tasks started inside it do not inherit it.
    """
    token = current.set(None)
    try:
        yield
    finally:
        current.reset(token)


@final
class SessionAdmission:
    __slots__ = ("_entered", "_granted_at", "_limiter", "_session")

    def __init__(self, session: Session, limiter: PriorityLimiter) -> None:
        if not isinstance(limiter, PriorityLimiter):
            raise InvalidArgumentError(f"expected a PriorityLimiter, not {type(limiter).__name__}")
        self._session = session
        self._limiter = limiter
        self._entered = False
        self._granted_at: float | None = None

    async def __aenter__(self) -> None:
        if self._entered:
            raise ReentryError("this admission was already entered; call admit() again")
        self._entered = True
        s = self._session
        while s._resumed is not None and s._state is SessionState.PAUSED:
            await s._resumed.wait()
        if s._state.is_final:
            raise SessionClosedError(f"{s!r} is {s._state.value}")
        s.last_activity = time.time()
        owner: Hashable = s
        quota = s.limits.quota if s.limits.quota is not None else self._limiter._default_quota
        start = self._limiter._clock()
        await self._limiter._acquire(s.priority, owner, quota, s.limits.max_queued)
        self._granted_at = self._limiter._waited(start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._limiter.release(self._session)
        self._limiter._held_for(self._granted_at, ok=exc is None)


@final
class SessionContext:
    """What :meth:`Engine.open_session` returns. Single use."""

    __slots__ = ("_engine", "_kwargs", "_name", "_session", "_token", "_used")

    def __init__(self, engine: Engine, name: str, kwargs: dict[str, Any]) -> None:
        self._engine = engine
        self._name = name
        self._kwargs = kwargs
        self._session: Session | None = None
        self._token: Any = None
        self._used = False

    async def __aenter__(self) -> Session:
        if self._used:
            raise ReentryError("open_session() context managers are single use")
        self._used = True
        session = await self._engine.start_session(self._name, **self._kwargs)
        self._session = session
        self._token = current.set(session)
        return session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self._session
        assert session is not None
        try:
            current.reset(self._token)
        except ValueError:
            current.set(None)
        if exc is None:
            await session.close()
            return
        session.cancel()
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + self._engine.config.cleanup_timeout
            await session._wait_done()


def admit(
    limiter: PriorityLimiter, *, priority: Priority | int | str | None = None
) -> AbstractAsyncContextManager[None]:
    """Return an async context manager holding one slot of ``limiter`` for the current work.

    Inside a session (see :func:`current_session`) the slot is taken under that session's priority and
    quota; elsewhere under ``priority`` (default MEDIUM). Adapters call this around every git process,
    database query and worker-thread hop. Cancellation while waiting takes nothing.
    """
    session = current.get()
    if session is not None:
        return session.admit(limiter)
    return limiter.acquire(Priority.MEDIUM if priority is None else priority)
