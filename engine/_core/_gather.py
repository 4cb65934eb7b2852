"""The deadline fan-out: ask named sources at once, each under its own deadline, all under one.

:func:`gather_sources` runs one task per source in one nursery. A source that misses its deadline (its
own, or the common one, whichever comes first) is cancelled and reported :attr:`SourceStatus.TIMEOUT`;
one that raises an :class:`Exception` is reported :attr:`SourceStatus.ERROR` with the exception; neither
fails the whole. Times are read on trio's clock (``trio.current_time()``), so a ``MockClock`` drives
them. The context provider and the rehydrator both fan out through it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import trio

from ._errors import InvalidArgumentError

__all__ = ["SourceOutcome", "SourceStatus", "gather_sources"]

T = TypeVar("T")


class SourceStatus(enum.StrEnum):
    """How one source of a fan-out fared (the context provider and the rehydrator report it)."""

    OK = "ok"
    """It answered in time."""
    ERROR = "error"
    """It raised an exception."""
    TIMEOUT = "timeout"
    """It was cancelled at its deadline."""


@dataclass(frozen=True, slots=True)
class SourceOutcome(Generic[T]):
    """One source's answer in a :func:`gather_sources`.

    Attributes:
        name: the source.
        status: ok, error or timeout.
        value: what it returned (None unless ok).
        exception: what it raised (None unless error).
        elapsed: seconds from the start of the fan-out until it ended (trio's clock).
    """

    name: str
    status: SourceStatus
    value: T | None = None
    exception: Exception | None = None
    elapsed: float = 0.0


def _check_timeouts(names: Mapping[str, object], timeouts: Mapping[str, float | None]) -> None:
    unknown = [name for name in timeouts if name not in names]
    if unknown:
        raise InvalidArgumentError(f"timeouts name unknown sources: {sorted(unknown)}")
    for name, t in timeouts.items():
        if t is None:
            continue
        if isinstance(t, bool) or not isinstance(t, int | float) or not t > 0:
            raise InvalidArgumentError(f"timeout of {name!r} must be positive seconds, not {t!r}")


async def gather_sources(
    calls: Mapping[str, Callable[[], Awaitable[T]]],
    *,
    timeouts: Mapping[str, float | None] | None = None,
    deadline: float = math.inf,
) -> dict[str, SourceOutcome[T]]:
    """Run every call concurrently and report how each fared, in the order of ``calls``.

    Args:
        calls: each source's name and the call that asks it.
        timeouts: a source's own limit in seconds from the start (None or absent: none), capped by
            ``deadline``.
        deadline: the common deadline, an absolute ``trio.current_time()`` value (default: none). A
            deadline already past still starts every call; each is cancelled at its first checkpoint.

    Returns:
        One :class:`SourceOutcome` per call, keyed by name, in the order of ``calls``. A source that
        raises an ``Exception`` is an error outcome; it never fails the others or the whole.

    Raises:
        InvalidArgumentError: a timeout is not positive or names an unknown source, or the deadline
            is NaN.

    Cancellation: every running call is cancelled, and the cancellation propagates once all of them
    have ended; nothing is returned and no task is left.
    """
    own = dict(timeouts or {})
    _check_timeouts(calls, own)
    if math.isnan(deadline):
        raise InvalidArgumentError("the deadline must be a time, not NaN")
    start = trio.current_time()
    outcomes: dict[str, SourceOutcome[T]] = {}

    async def run(name: str, call: Callable[[], Awaitable[T]], at: float) -> None:
        try:
            with trio.move_on_at(at) as scope:
                value = await call()
        except Exception as exc:  # reported, never raised: one source never fails the whole
            outcomes[name] = SourceOutcome(
                name, SourceStatus.ERROR, exception=exc, elapsed=trio.current_time() - start
            )
            return
        elapsed = trio.current_time() - start
        if scope.cancelled_caught:
            outcomes[name] = SourceOutcome(name, SourceStatus.TIMEOUT, elapsed=elapsed)
        else:
            outcomes[name] = SourceOutcome(name, SourceStatus.OK, value, elapsed=elapsed)

    async with trio.open_nursery() as nursery:
        for name, call in calls.items():
            limit = own.get(name)
            at = deadline if limit is None else min(deadline, start + limit)
            nursery.start_soon(run, name, call, at, name=f"gather:{name}")
    return {name: outcomes[name] for name in calls}
