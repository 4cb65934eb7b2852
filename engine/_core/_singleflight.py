"""Single-flight: concurrent calls for one key run the work once and share its result.

One caller per key is the leader and runs the function; the others wait on a ``trio.Event``.
When the leader finishes, every waiter gets its value. When the leader is cancelled (or stops
with a ``BaseException`` that is not an ``Exception``), its call is abandoned and the waiters
wake up: the first of them to run becomes the new leader and the rest wait on it. When the
function raises an ``Exception``, the leader gets it as is and every waiter of that call gets a
:class:`SingleFlightError` whose ``__cause__`` is the original exception.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar, final

import trio

from ._errors import ScribeError

__all__ = ["SingleFlight", "SingleFlightError", "SingleFlightStatistics"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlightError(ScribeError):
    """The leader's function raised; the original exception is the ``__cause__``."""


@dataclass(frozen=True, slots=True)
class SingleFlightStatistics:
    """Counters of a :class:`SingleFlight`.

    Attributes:
        in_flight: Keys with a running leader now.
        waiting: Callers waiting on a leader now.
        led: Calls that ran the function (leaders started, including takeovers).
        joined: Calls that waited for another caller's leader at least once.
        takeovers: Leaders started by a waiter after the previous leader was cancelled.
    """

    in_flight: int
    waiting: int
    led: int
    joined: int
    takeovers: int


@final
class _Call(Generic[V]):
    __slots__ = ("done", "error", "failed", "finished", "value", "waiters")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.finished = False  # the function returned a value
        self.failed = False  # the function raised an Exception
        self.value: V | None = None
        self.error: BaseException | None = None
        self.waiters = 0


@final
class SingleFlight(Generic[K, V]):
    """Deduplicate concurrent calls by key (trio only; share one instance across sessions)."""

    def __init__(self) -> None:
        self._calls: dict[K, _Call[V]] = {}
        self._led = 0
        self._joined = 0
        self._takeovers = 0

    def statistics(self) -> SingleFlightStatistics:
        """A snapshot of the counters."""
        return SingleFlightStatistics(
            in_flight=len(self._calls),
            waiting=sum(c.waiters for c in self._calls.values()),
            led=self._led,
            joined=self._joined,
            takeovers=self._takeovers,
        )

    def in_flight(self, key: K) -> bool:
        """Whether a leader is running for ``key`` now."""
        return key in self._calls

    async def run(self, key: K, fn: Callable[[], Awaitable[V]]) -> V:
        """Run ``fn`` for ``key`` unless a call for that key is already running; share its result.

        Args:
            key: What identifies the work.
            fn: The work; called with no arguments by whichever caller leads.

        Returns:
            The leader's value (the same object for every caller of that call).

        Raises:
            SingleFlightError: In a waiter, when the leader's ``fn`` raised (cause attached).

        Cancellation: a cancelled waiter just leaves. A cancelled leader abandons its call; one
        of the waiters (if any) takes over and runs ``fn`` again. The cancelled caller gets
        ``trio.Cancelled`` as usual.
        """
        took_over = False
        joined = False
        while True:
            call = self._calls.get(key)
            if call is None:
                break
            if not joined:
                joined = True
                self._joined += 1
            call.waiters += 1
            try:
                await call.done.wait()
            finally:
                call.waiters -= 1
            if call.finished:
                return call.value  # type: ignore[return-value]
            if call.failed:
                raise SingleFlightError(
                    f"the shared call for {key!r} failed: {call.error!r}"
                ) from call.error
            # The leader was cancelled: loop, and lead unless someone else already does.
            took_over = True

        call = _Call[V]()
        self._calls[key] = call
        self._led += 1
        if took_over:
            self._takeovers += 1
        try:
            value = await fn()
        except Exception as exc:
            call.failed = True
            call.error = exc
            raise
        else:
            call.value = value
            call.finished = True
            return value
        finally:
            # Abandoned (cancelled) unless finished or failed; either way release the key.
            if self._calls.get(key) is call:
                del self._calls[key]
            call.done.set()
