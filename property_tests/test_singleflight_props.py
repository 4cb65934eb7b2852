"""Single-flight under generated arrivals, cancellations and failures (MockClock, one trio run each)."""

from __future__ import annotations

import itertools
import math

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import SingleFlight, SingleFlightError

callers = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.9, 1.2, 2.5]),  # arrival
        st.one_of(st.none(), st.sampled_from([0.05, 0.2, 0.6, 1.5])),  # cancel after
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=300)
@given(plan=callers, failing_runs=st.sets(st.integers(1, 6), max_size=2))
def test_one_leader_at_a_time_and_every_live_caller_is_answered(
    plan: list[tuple[float, float | None]], failing_runs: set[int]
) -> None:
    runs: list[tuple[int, float, float | None]] = []  # (run number, start, end or None)
    completed: dict[int, float] = {}  # run number -> when it finished (not cancelled)
    outcomes: dict[int, object] = {}

    async def main() -> None:
        flight: SingleFlight[str, int] = SingleFlight()

        async def work() -> int:
            number = len(runs) + 1
            start = trio.current_time()
            runs.append((number, start, None))
            try:
                await trio.sleep(1.0)
            finally:  # a cancelled run ends too (its end is recorded, not its result)
                runs[number - 1] = (number, start, trio.current_time())
            completed[number] = trio.current_time()
            if number in failing_runs:
                raise ValueError(number)
            return number

        async def caller(i: int, arrive: float, cancel_after: float | None) -> None:
            await trio.sleep(arrive)
            deadline = math.inf if cancel_after is None else trio.current_time() + cancel_after
            with trio.CancelScope(deadline=deadline) as scope:
                try:
                    outcomes[i] = ("value", await flight.run("k", work), trio.current_time())
                except ValueError as exc:
                    outcomes[i] = ("own error", exc.args[0], trio.current_time())
                except SingleFlightError as exc:
                    assert isinstance(exc.__cause__, ValueError)
                    outcomes[i] = ("shared error", exc.__cause__.args[0], trio.current_time())
            if scope.cancelled_caught:
                outcomes[i] = ("cancelled", None, trio.current_time())

        async with trio.open_nursery() as nursery:
            for i, (arrive, cancel_after) in enumerate(plan):
                nursery.start_soon(caller, i, arrive, cancel_after)
        stats = flight.statistics()
        assert stats.in_flight == 0 and stats.waiting == 0
        assert stats.led == len(runs)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))

    # at most one run of the key at any moment
    assert all(end is not None for _, _, end in runs)
    spans = sorted((start, end) for _, start, end in runs)
    for (_, end_a), (start_b, _) in itertools.pairwise(spans):
        assert end_a is not None and end_a <= start_b
    for i, (arrive, cancel_after) in enumerate(plan):
        kind, value, at = outcomes[i]  # type: ignore[misc]
        if kind == "cancelled":
            assert cancel_after is not None  # only callers meant to be cancelled ever are
            continue
        # an answer comes from a run that ended when the caller got it, after it arrived
        assert isinstance(value, int) and value in completed
        assert completed[value] == at and at >= arrive
        # ... and it is the first run to complete after the caller arrived (no stale answer,
        # no caller left behind for a later run)
        first = min(end for end in completed.values() if end >= arrive)
        if first > arrive:
            assert at == first
        assert (kind == "value") == (value not in failing_runs)
