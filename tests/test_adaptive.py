"""AdaptiveCapacity: a gate's capacity follows its hold times within bounds (on trio's MockClock)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.lowlevel
import trio.testing

from engine import (
    AdaptiveCapacity,
    AdaptiveSettings,
    EngineConfig,
    InvalidArgumentError,
    Priority,
    PriorityLimiter,
    open_engine,
)

SETTINGS = AdaptiveSettings(minimum=1, maximum=8)


async def _load(
    gate: PriorityLimiter, workers: int, hold: Callable[[], float], seconds: float
) -> None:
    """``workers`` tasks taking a slot after another for ``seconds``, each hold ``hold()`` long."""
    with trio.move_on_after(seconds):
        async with trio.open_nursery() as nursery:
            for _ in range(workers):

                async def work() -> None:
                    while True:
                        async with gate.acquire():
                            await trio.sleep(hold())

                nursery.start_soon(work)


async def test_capacity_grows_to_its_maximum_while_hold_times_hold(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = PriorityLimiter(2)
    adaptive = AdaptiveCapacity(gate, SETTINGS, initial=2)
    assert gate.capacity == 2
    await _load(gate, 20, lambda: 0.05, 60)
    stats = adaptive.statistics()
    assert gate.capacity == 8 == stats.capacity
    assert stats.raised >= 6 and stats.lowered == 0
    assert stats.short_hold == pytest.approx(0.05)


async def test_capacity_falls_when_holds_slow_down_and_comes_back_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = PriorityLimiter(8)
    adaptive = AdaptiveCapacity(gate, SETTINGS)
    slow = False
    await _load(gate, 20, lambda: 0.25 if slow else 0.05, 10)
    assert gate.capacity == 8
    slow = True  # the resource behind the gate is five times slower now
    await _load(gate, 20, lambda: 0.25 if slow else 0.05, 40)
    low = adaptive.statistics()
    assert gate.capacity <= 3
    assert low.lowered >= 3
    slow = False
    await _load(gate, 20, lambda: 0.25 if slow else 0.05, 60)
    assert gate.capacity == 8
    assert adaptive.statistics().raised > 0


async def test_a_gate_not_used_to_half_its_slots_keeps_its_capacity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = PriorityLimiter(8)
    adaptive = AdaptiveCapacity(gate, SETTINGS)
    await _load(gate, 3, lambda: 0.05, 5)
    await _load(gate, 3, lambda: 0.5, 30)  # slower, but the gate is not what bounds the work
    stats = adaptive.statistics()
    assert stats.windows >= 10
    assert gate.capacity == 8 and stats.lowered == stats.raised == 0


async def test_the_capacity_stays_within_its_bounds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = PriorityLimiter(4)
    adaptive = AdaptiveCapacity(gate, AdaptiveSettings(minimum=3, maximum=5), initial=99)
    assert gate.capacity == 5
    slow = True
    seen: set[int] = set()

    async def watch() -> None:
        while True:
            seen.add(gate.capacity)
            await trio.sleep(0.5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await _load(gate, 10, lambda: 0.05, 5)
        await _load(gate, 10, lambda: 1.0 if slow else 0.05, 60)
        assert gate.capacity == 3
        slow = False
        await _load(gate, 10, lambda: 0.05, 60)
        nursery.cancel_scope.cancel()
    assert seen <= {3, 4, 5} and 3 in seen and gate.capacity == 5
    adaptive.close()
    await _load(gate, 10, lambda: 2.0, 30)
    assert gate.capacity == 5  # closed: it no longer moves


async def test_a_lowered_capacity_queues_work_at_the_gate_by_priority(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = PriorityLimiter(8, aging_interval=None)
    adaptive = AdaptiveCapacity(gate, SETTINGS)
    await _load(gate, 20, lambda: 0.05, 5)
    await _load(gate, 20, lambda: 0.5, 60)
    adaptive.close()  # the capacity it arrived at stays while the order is watched
    capacity = gate.capacity
    assert capacity <= 3
    order: list[str] = []

    async def one(label: str, priority: Priority, hold: float) -> None:
        async with gate.acquire(priority):
            order.append(label)
            await trio.sleep(hold)

    async with trio.open_nursery() as nursery:
        for i in range(8):  # holds of different lengths: one slot is freed at a time
            nursery.start_soon(one, f"low{i}", Priority.LOW, 0.5 + i / 10)
            await trio.lowlevel.checkpoint()
        await trio.sleep(0.01)
        nursery.start_soon(one, "high", Priority.HIGH, 0.5)
    assert gate.capacity == capacity
    assert order.index("high") == capacity  # right after the first low holders, not last


async def test_an_engine_gate_named_adaptive_adapts() -> None:
    config = EngineConfig(
        gates={"db": 4, "git": 2}, adaptive_gates={"db": AdaptiveSettings(minimum=2, maximum=6)}
    )
    async with open_engine(config) as eng:
        assert eng.gate("db").capacity == 4
        assert eng.gate("git").capacity == 2
        stats = eng.statistics()
        assert set(stats.adaptive) == {"db"}
        assert stats.adaptive["db"].capacity == 4 and stats.adaptive["db"].windows == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"minimum": 0},
        {"maximum": 0},
        {"minimum": 5, "maximum": 4},
        {"minimum": True},
        {"tolerance": 0.5},
        {"window": 0},
        {"smoothing": 0},
        {"smoothing": 1.5},
        {"headroom": -1},
        {"headroom": float("nan")},
        {"min_samples": 0},
        {"long_windows": 2.5},
    ],
)
def test_settings_out_of_range_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentError):
        AdaptiveSettings(**kwargs)  # type: ignore[arg-type]


def test_an_engine_config_refuses_adaptive_gates_that_are_not_settings() -> None:
    with pytest.raises(InvalidArgumentError):
        EngineConfig(adaptive_gates={"db": 3})  # type: ignore[dict-item]
