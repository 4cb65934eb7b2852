"""Hypothesis-driven task scheduling: fuzz the interleavings of a host's own session code.

Trio runs the tasks that are ready at one moment in an order it draws from one module-level random
generator. :class:`Schedule` seeds that generator (and makes trio shuffle every batch of ready tasks, as
it does under pytest-trio), so one seed is one interleaving of a whole run, and the same seed gives the
same interleaving again. :func:`schedules` is the hypothesis strategy that draws them: a property test
that takes a ``Schedule`` and runs its program through :meth:`Schedule.run` is fuzzed over interleavings
as well as over its other inputs, and a failure prints the seed that replays it. The engine's own
property tests (``property_tests/``) are written this way.

Example: two sessions each claim one review; the check is separated from the act by an await (a store
write, say), and whether both claims get in depends on how the two tasks interleave::

    import trio
    from hypothesis import given

    import engine
    from engine.testing import Schedule, schedules

    async def claim(claims: list[str], who: str, lead: int) -> None:
        for _ in range(lead):
            await trio.lowlevel.checkpoint()
        if not claims:  # check ...
            await trio.lowlevel.checkpoint()  # ... an await in between ...
            claims.append(who)  # ... then act

    async def two_reviewers() -> None:
        claims: list[str] = []
        async with engine.open_engine() as eng:
            async with eng.open_session("alice") as a, eng.open_session("bob") as b:
                a.start_soon(claim, claims, "alice", 1)
                b.start_soon(claim, claims, "bob", 2)
        assert len(claims) == 1, f"claimed twice: {claims}"

    @given(schedules())
    def test_one_claim_wins(schedule: Schedule) -> None:
        schedule.run(two_reviewers)

Hypothesis reports the failing interleaving as ``schedule=Schedule(seed=...)`` (and the exception
carries a note saying the same); ``Schedule(seed=...).run(two_reviewers)`` fails the same way again, in a
debugger if need be. The run uses trio's ``MockClock`` (autojump) unless given a clock, so sleeps and
timeouts cost no wall time and do not depend on the machine's speed.

What is fuzzed is the order in which tasks that are ready together are run; code reaches a new
interleaving only at its checkpoints. Trio's scheduler generator is private to trio; this module is the
one place in the project that touches it.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import trio
import trio.testing
from trio._core import _run as _trio_run

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = ["Schedule", "schedules"]

_T = TypeVar("_T")
_MAX_SEED = 2**32 - 1


def _scheduler_random() -> random.Random:
    rng = getattr(_trio_run, "_r", None)
    if not isinstance(rng, random.Random):
        raise RuntimeError("this trio version keeps no scheduler random generator to seed")
    return rng


@dataclass(frozen=True, slots=True)
class Schedule:
    """One interleaving of a trio run, named by the seed of trio's scheduler.

    Get them from :func:`schedules` in a property test, or build one from a printed seed to replay a
    failure: ``Schedule(seed=1234).run(main)``.

    Attributes:
        seed: the seed of trio's scheduler random generator for the run (0 to 2**32 - 1).
    """

    seed: int

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, not {type(self.seed).__name__}")
        if not 0 <= self.seed <= _MAX_SEED:
            raise ValueError(f"seed must be in 0..{_MAX_SEED}, not {self.seed}")

    def run(
        self,
        async_fn: Callable[..., Awaitable[_T]],
        *args: Any,
        clock: trio.abc.Clock | None = None,
    ) -> _T:
        """Run ``async_fn(*args)`` in a new trio run under this schedule and return its result.

        Every batch of ready tasks is shuffled by trio's scheduler generator seeded with :attr:`seed`,
        so the same seed gives the same interleaving. ``clock`` defaults to a fresh
        ``trio.testing.MockClock(autojump_threshold=0)``. An exception from the run propagates with a
        note naming the seed that replays it.

        Call it from synchronous code (a test function), not from inside a trio run.

        Cancellation: the run is its own; nothing outside can cancel it. Cancelling inside it works as
        in any trio run, and an uncaught ``trio.Cancelled`` cannot escape ``trio.run``.
        """
        rng = _scheduler_random()
        # trio shuffles each batch of ready tasks (sorted first, so the order depends on the seed
        # alone) instead of only sometimes reversing it; pytest-trio and trio's hypothesis plugin set
        # the same switch
        setattr(_trio_run, "_ALLOW_DETERMINISTIC_SCHEDULING", True)  # noqa: B010
        saved = rng.getstate()
        rng.seed(self.seed)
        try:
            return trio.run(
                async_fn,
                *args,
                clock=clock if clock is not None else trio.testing.MockClock(autojump_threshold=0),
            )
        except BaseException as exc:
            exc.add_note(f"trio schedule: replay with Schedule(seed={self.seed}).run(...)")
            raise
        finally:
            rng.setstate(saved)


def schedules() -> SearchStrategy[Schedule]:
    """A hypothesis strategy of :class:`Schedule` values; failures shrink toward small seeds.

    Needs hypothesis (a test dependency), imported only when this is called.
    """
    from hypothesis import strategies as st

    return st.builds(Schedule, seed=st.integers(min_value=0, max_value=_MAX_SEED))
