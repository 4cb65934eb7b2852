"""Restart policies for long-lived services (the watcher, the summarizer, ...)."""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from ._errors import InvalidArgumentError, RestartLimitError
from ._events import EventBus

__all__ = ["Restart", "RestartPolicy", "restart_publisher", "supervise"]

_log = logging.getLogger(__name__)


class Restart(enum.StrEnum):
    """When a supervised service is started again.

    PERMANENT: always, whether it returned or raised. TRANSIENT: only when it raised.
    TEMPORARY: never; an error is handled like any other task's.
    """

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How a service is restarted: at most ``max_restarts`` restarts within ``period`` seconds, waiting
    ``backoff_initial`` seconds before the first and multiplying by ``backoff_factor`` up to
    ``backoff_max``. A run that lasted longer than ``period`` resets the backoff."""

    restart: Restart = Restart.TRANSIENT
    max_restarts: int = 3
    period: float = 5.0
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    backoff_factor: float = 2.0

    def __post_init__(self) -> None:
        if not isinstance(self.restart, Restart):
            raise InvalidArgumentError(f"restart must be a Restart, not {self.restart!r}")
        if isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int):
            raise InvalidArgumentError("max_restarts must be an int")
        if self.max_restarts < 0:
            raise InvalidArgumentError("max_restarts must be >= 0")
        if not self.period > 0:
            raise InvalidArgumentError("period must be positive")
        if self.backoff_initial < 0 or self.backoff_max < self.backoff_initial:
            raise InvalidArgumentError("need 0 <= backoff_initial <= backoff_max")
        if self.backoff_factor < 1:
            raise InvalidArgumentError("backoff_factor must be >= 1")


def restart_publisher(
    bus: EventBus, topic: str, label: str, *, session_id: str | None = None
) -> Callable[[int, BaseException | None], None]:
    """An ``on_restart`` callback for :func:`supervise` that publishes each restart on ``topic``."""

    def on_restart(count: int, error: BaseException | None) -> None:
        payload = {
            "service": label,
            "restarts": count,
            "error": None if error is None else repr(error),
        }
        bus.publish_nowait(topic, payload, session_id=session_id)

    return on_restart


async def supervise(
    fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    policy: RestartPolicy,
    *,
    name: str = "",
    on_restart: Callable[[int, BaseException | None], None] | None = None,
) -> None:
    """Run ``fn(*args)`` under ``policy``.

    Returns when the service ends and the policy does not restart it; raises its error for a TEMPORARY
    service, and :class:`RestartLimitError` (chained to the last error) once restarts exceed the limit.
    ``on_restart(count, error)`` is called before each restart. Cancellation stops the service and the
    waiting between restarts at once.
    """
    recent: deque[float] = deque()
    delay = policy.backoff_initial
    restarts = 0
    while True:
        started = trio.current_time()
        error: Exception | None = None
        try:
            await fn(*args)
        except Exception as exc:
            if policy.restart is Restart.TEMPORARY:
                raise
            error = exc
        else:
            if policy.restart is not Restart.PERMANENT:
                return
        now = trio.current_time()
        if now - started > policy.period:
            delay = policy.backoff_initial
        recent.append(now)
        while recent and now - recent[0] > policy.period:
            recent.popleft()
        if len(recent) > policy.max_restarts:
            raise RestartLimitError(
                f"service {name or fn!r} needed more than {policy.max_restarts} restarts "
                f"within {policy.period} s"
            ) from error
        restarts += 1
        _log.log(
            logging.INFO if error is None else logging.WARNING,
            "service %s %s; restart %d in %g s",
            name or fn,
            "returned" if error is None else f"failed: {type(error).__name__}: {error}",
            restarts,
            delay,
            exc_info=error,
            extra={"service": name or repr(fn)},
        )
        if on_restart is not None:
            on_restart(restarts, error)
        await trio.sleep(delay)
        delay = min(delay * policy.backoff_factor, policy.backoff_max)
