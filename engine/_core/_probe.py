"""Probing a dependency: a short check on an interval, each under a short timeout, judged up or down.

:class:`Probe` runs ``check()`` (an async call that returns when the dependency answers and raises
when it does not) every ``interval`` seconds under ``timeout`` seconds (trio's clock), keeps the state
(``up``, ``down``, ``unknown`` before the first answer), when it last changed and the last error, and
tells ``on_change`` of each change. :meth:`Probe.health` is its :class:`~._health.HealthCheck`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, final

import trio

from ._errors import InvalidArgumentError
from ._health import HealthCheck

__all__ = ["Probe"]


@final
class Probe:
    """Up or down, from a periodic check.

    Args:
        name: what is probed (``database``).
        check: returns when the dependency answers; raises (anything but ``trio.Cancelled``) when not.
            It is cancelled after ``timeout`` and must end promptly when cancelled.
        interval: seconds from the start of one check to the start of the next.
        timeout: seconds a check may take before it counts as failed.
        on_change: called with ``(state, error)`` whenever the state changes.
    """

    def __init__(
        self,
        name: str,
        check: Callable[[], Awaitable[object]],
        *,
        interval: float = 0.5,
        timeout: float = 0.5,
        on_change: Callable[[str, str | None], None] | None = None,
    ) -> None:
        for what, v in (("interval", interval), ("timeout", timeout)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
                raise InvalidArgumentError(f"{what} must be a number > 0, not {v!r}")
        self.name = name
        self._check = check
        self.interval = float(interval)
        self.timeout = float(timeout)
        self._on_change = on_change
        self.state = "unknown"
        self.since = trio.current_time()
        self.error: str | None = None
        self.checks = 0
        self.failures = 0

    async def check_once(self) -> bool:
        """Run one check now and record its outcome; True when the dependency answered.

        Cancellation: the check is cancelled and nothing is recorded.
        """
        error: str | None = None
        with trio.move_on_after(self.timeout) as scope:
            try:
                await self._check()
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
        if scope.cancelled_caught:
            error = f"no answer within {self.timeout:g} s"
        self._record(error)
        return error is None

    def _record(self, error: str | None) -> None:
        self.checks += 1
        state = "up" if error is None else "down"
        if error is not None:
            self.failures += 1
        self.error = error
        if state != self.state:
            self.state = state
            self.since = trio.current_time()
            if self._on_change is not None:
                self._on_change(state, error)

    async def run(self) -> NoReturn:
        """Check every ``interval`` seconds until cancelled (start it as a service)."""
        while True:
            deadline = trio.current_time() + self.interval
            await self.check_once()
            await trio.sleep_until(deadline)

    def health(self) -> HealthCheck:
        """The probe's judgement: ok unless down."""
        detail: dict[str, Any] = {
            "since_s": round(max(0.0, trio.current_time() - self.since), 3),
            "checks": self.checks,
            "failures": self.failures,
        }
        # The error itself stays out: it may name a socket path or a host.
        problem = None if self.state != "down" else f"{self.name} down"
        return HealthCheck(
            ok=self.state != "down", status=self.state, problem=problem, detail=detail
        )
