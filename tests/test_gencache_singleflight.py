"""Single-flight (pure trio, under a MockClock)."""

from __future__ import annotations

import math
import random

import pytest
import trio
import trio.testing

import engine
from engine import SingleFlight


async def test_concurrent_calls_share_one_run(autojump_clock: trio.testing.MockClock) -> None:
    flight: SingleFlight[str, object] = SingleFlight()
    runs = 0

    async def work() -> object:
        nonlocal runs
        runs += 1
        await trio.sleep(1)
        return object()

    results: list[object] = []

    async def call() -> None:
        results.append(await flight.run("k", work))

    async with trio.open_nursery() as nursery:
        for _ in range(100):
            nursery.start_soon(call)
    assert runs == 1
    assert len(results) == 100 and all(r is results[0] for r in results)
    stats = flight.statistics()
    assert stats.led == 1 and stats.joined == 99 and stats.in_flight == 0 and stats.waiting == 0


async def test_different_keys_run_separately(autojump_clock: trio.testing.MockClock) -> None:
    flight: SingleFlight[int, int] = SingleFlight()

    async def work(i: int) -> int:
        await trio.sleep(1)
        return i

    got: dict[int, int] = {}

    async def call(i: int) -> None:
        got[i] = await flight.run(i, lambda: work(i))

    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(call, i)
    assert got == {i: i for i in range(10)}
    assert flight.statistics().led == 10


async def test_cancelled_leader_hands_over_to_a_waiter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    started: list[str] = []

    async def work(who: str) -> str:
        started.append(who)
        await trio.sleep(1)
        return f"made by {who}"

    results: dict[str, str] = {}
    leader_scope = trio.CancelScope()

    async def leader() -> None:
        with leader_scope:
            results["leader"] = await flight.run("k", lambda: work("leader"))

    async def waiter(name: str) -> None:
        results[name] = await flight.run("k", lambda: work(name))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(leader)
        await trio.testing.wait_all_tasks_blocked()
        for name in ("w1", "w2", "w3"):
            nursery.start_soon(waiter, name)
        await trio.sleep(0.5)
        assert flight.statistics().waiting == 3
        leader_scope.cancel()
    assert "leader" not in results
    assert len(started) == 2 and started[0] == "leader"
    maker = started[1]
    assert results == {name: f"made by {maker}" for name in ("w1", "w2", "w3")}
    stats = flight.statistics()
    assert stats.takeovers == 1 and stats.in_flight == 0 and stats.waiting == 0


async def test_failure_reaches_every_waiter(autojump_clock: trio.testing.MockClock) -> None:
    flight: SingleFlight[str, int] = SingleFlight()

    async def work() -> int:
        await trio.sleep(1)
        raise ValueError("boom")

    errors: list[BaseException] = []

    async def call() -> None:
        try:
            await flight.run("k", work)
        except (ValueError, engine.SingleFlightError) as exc:
            errors.append(exc)

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(call)
    assert sum(isinstance(e, ValueError) for e in errors) == 1
    shared = [e for e in errors if isinstance(e, engine.SingleFlightError)]
    assert len(shared) == 4
    assert all(isinstance(e.__cause__, ValueError) for e in shared)
    # the failed call is gone: the next call runs again
    with pytest.raises(ValueError):
        await flight.run("k", work)


@pytest.mark.parametrize("seed", range(5))
async def test_100_callers_with_cancellations_mixed_in(
    seed: int, autojump_clock: trio.testing.MockClock
) -> None:
    rng = random.Random(seed)
    flight: SingleFlight[str, int] = SingleFlight()
    started = 0
    completed = 0

    async def work() -> int:
        nonlocal started, completed
        started += 1
        run = started
        await trio.sleep(1.0)
        completed += 1
        return run

    results: dict[int, int] = {}
    cancelled: set[int] = set()

    async def caller(i: int, arrive: float, cancel_at: float | None) -> None:
        await trio.sleep(arrive)
        deadline = trio.current_time() + cancel_at if cancel_at else math.inf
        with trio.CancelScope(deadline=deadline) as scope:
            results[i] = await flight.run("key", work)
        if scope.cancelled_caught:
            cancelled.add(i)

    plan = [
        (rng.uniform(0.01, 0.5), rng.uniform(0.01, 1.5) if rng.random() < 0.3 else None)
        for _ in range(100)
    ]
    plan[0] = (0.0, 0.3)  # the first to arrive leads, and is cancelled mid-run
    async with trio.open_nursery() as nursery:
        for i, (arrive, cancel_at) in enumerate(plan):
            nursery.start_soon(caller, i, arrive, cancel_at)
    # every caller either got a result or was cancelled, never both, never neither
    assert set(results) | cancelled == set(range(100))
    assert not set(results) & cancelled
    # the generator ran to completion exactly once per distinct result, and all callers that
    # were alive together shared it; a cancelled run never produced a result
    assert completed == len(set(results.values()))
    assert flight.statistics().led == started
    assert flight.statistics().takeovers >= 1  # the first leader was cancelled
    assert flight.statistics().in_flight == 0 and flight.statistics().waiting == 0
    # the callers overlap in time (all arrive within 0.5 s, a run takes 1 s): one completed run
    # serves them unless its leader was cancelled, and then a waiter ran it again
    assert completed == 1
