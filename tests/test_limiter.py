"""PriorityLimiter: ordering, aging, quotas, backpressure, cancellation, statistics."""

from __future__ import annotations

import functools

import pytest
import trio
import trio.testing

from engine import (
    AdmissionQueueFullError,
    InvalidArgumentError,
    Priority,
    PriorityLimiter,
    ReentryError,
)


async def _hold(
    limiter: PriorityLimiter, order: list[str], label: str, prio: Priority, **kw: object
) -> None:
    async with limiter.acquire(prio, **kw):  # type: ignore[arg-type]
        order.append(label)
        await trio.sleep(1)


async def test_waiters_are_admitted_by_priority_then_arrival(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = PriorityLimiter(1, aging_interval=None)
    order: list[str] = []
    async with trio.open_nursery() as nursery:
        async with limiter.acquire(Priority.HIGH):
            for label, prio in [
                ("low1", Priority.LOW),
                ("med1", Priority.MEDIUM),
                ("high1", Priority.HIGH),
                ("low2", Priority.LOW),
                ("high2", Priority.HIGH),
            ]:
                nursery.start_soon(_hold, limiter, order, label, prio)
                await trio.testing.wait_all_tasks_blocked()
            assert limiter.statistics().waiting == 5
    assert order == ["high1", "high2", "med1", "low1", "low2"]
    stats = limiter.statistics()
    assert stats.borrowed == 0 and stats.waiting == 0 and stats.granted_total == 6


async def test_aging_lets_an_old_low_waiter_go_before_new_high_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = PriorityLimiter(1, aging_interval=1.0)
    order: list[str] = []
    assert limiter.aging_bound(Priority.LOW) == 2.0
    async with trio.open_nursery() as nursery:
        async with limiter.acquire(Priority.HIGH):
            nursery.start_soon(_hold, limiter, order, "low", Priority.LOW)
            await trio.testing.wait_all_tasks_blocked()
            await trio.sleep(2.5)  # the LOW waiter is now older than its aging bound
            nursery.start_soon(_hold, limiter, order, "high-late", Priority.HIGH)
            await trio.testing.wait_all_tasks_blocked()
    assert order == ["low", "high-late"]


async def test_without_aging_a_low_waiter_waits_for_every_high(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = PriorityLimiter(1, aging_interval=None)
    order: list[str] = []
    async with trio.open_nursery() as nursery:
        async with limiter.acquire(Priority.HIGH):
            nursery.start_soon(_hold, limiter, order, "low", Priority.LOW)
            await trio.testing.wait_all_tasks_blocked()
            await trio.sleep(100)
            nursery.start_soon(_hold, limiter, order, "high-late", Priority.HIGH)
            await trio.testing.wait_all_tasks_blocked()
    assert order == ["high-late", "low"]


async def test_quota_keeps_one_owner_from_taking_every_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = PriorityLimiter(3, aging_interval=None)
    peak: dict[str, int] = {"a": 0, "b": 0}
    held: dict[str, int] = {"a": 0, "b": 0}
    order: list[str] = []

    async def work(owner: str, prio: Priority) -> None:
        async with limiter.acquire(prio, owner=owner, quota=1):
            held[owner] += 1
            peak[owner] = max(peak[owner], held[owner])
            order.append(owner)
            await trio.sleep(1)
            held[owner] -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(4):
            nursery.start_soon(work, "a", Priority.HIGH)
        await trio.testing.wait_all_tasks_blocked()
        # "a" holds one slot; its other waiters step aside so "b" (lower priority) gets a slot at once
        nursery.start_soon(work, "b", Priority.LOW)
        await trio.testing.wait_all_tasks_blocked()
        assert limiter.statistics().borrowed == 2
        assert limiter.statistics().waiting == 3
    assert peak == {"a": 1, "b": 1}
    assert order.count("a") == 4 and order.count("b") == 1
    assert limiter.statistics().borrowed == 0


async def test_default_quota_applies_to_owners(autojump_clock: trio.testing.MockClock) -> None:
    limiter = PriorityLimiter(4, default_quota=2)
    limiter.acquire_nowait(owner="x")
    limiter.acquire_nowait(owner="x")
    with pytest.raises(trio.WouldBlock):
        limiter.acquire_nowait(owner="x")
    limiter.acquire_nowait(owner="y")
    limiter.release("x")
    limiter.release("x")
    limiter.release("y")
    assert limiter.statistics().borrowed == 0


async def test_owner_queue_is_bounded(autojump_clock: trio.testing.MockClock) -> None:
    limiter = PriorityLimiter(1, max_queued=2)
    async with trio.open_nursery() as nursery:
        async with limiter.acquire():
            for _ in range(2):
                nursery.start_soon(
                    functools.partial(_hold, limiter, [], "q", Priority.MEDIUM, owner="s")
                )
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(AdmissionQueueFullError):
                async with limiter.acquire(owner="s"):
                    pass  # pragma: no cover
            # another owner is not affected by "s"'s full queue
            nursery.start_soon(
                functools.partial(_hold, limiter, [], "o", Priority.MEDIUM, owner="t")
            )
            await trio.testing.wait_all_tasks_blocked()
            assert limiter.statistics().waiting == 3
    stats = limiter.statistics()
    assert stats.rejected_total == 1 and stats.borrowed == 0 and stats.waiting == 0


async def test_cancelled_waiter_takes_nothing(autojump_clock: trio.testing.MockClock) -> None:
    limiter = PriorityLimiter(1)
    order: list[str] = []
    scope = trio.CancelScope()

    async def doomed() -> None:
        with scope:
            async with limiter.acquire(Priority.HIGH):
                order.append("doomed")  # pragma: no cover

    async with trio.open_nursery() as nursery:
        async with limiter.acquire():
            nursery.start_soon(_hold, limiter, order, "survivor", Priority.LOW)
            nursery.start_soon(doomed)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert limiter.statistics().waiting == 1
    assert order == ["survivor"]
    stats = limiter.statistics()
    assert stats.borrowed == 0 and stats.cancelled_total == 1


async def test_slot_granted_at_the_moment_of_cancellation_is_released() -> None:
    limiter = PriorityLimiter(1)
    entered: list[bool] = []
    async with trio.open_nursery() as nursery:
        await limiter.acquire_slot()
        scope = trio.CancelScope()

        async def waiter() -> None:
            with scope:
                async with limiter.acquire():
                    entered.append(True)
                    await trio.sleep(10)  # cancelled here: the slot is released by __aexit__

        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        # hand the slot over and cancel in the same tick, before the waiter runs again
        limiter.release()
        scope.cancel()
        assert limiter.borrowed == 1  # the slot belongs to the waiter now
    assert entered == [True]
    assert limiter.statistics().borrowed == 0


async def test_raising_capacity_admits_waiters_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    limiter = PriorityLimiter(1)
    order: list[str] = []
    async with trio.open_nursery() as nursery:
        async with limiter.acquire():
            for i in range(3):
                nursery.start_soon(_hold, limiter, order, f"w{i}", Priority.MEDIUM)
            await trio.testing.wait_all_tasks_blocked()
            assert order == []
            limiter.capacity = 4
            await trio.testing.wait_all_tasks_blocked()
            assert len(order) == 3 and limiter.borrowed == 4
            limiter.capacity = 1  # holders keep their slots; new grants wait
            assert limiter.borrowed == 4
    assert limiter.statistics().borrowed == 0


async def test_statistics_by_priority(autojump_clock: trio.testing.MockClock) -> None:
    limiter = PriorityLimiter(1, name="git")
    async with trio.open_nursery() as nursery:
        async with limiter.acquire():
            nursery.start_soon(_hold, limiter, [], "a", Priority.LOW)
            nursery.start_soon(_hold, limiter, [], "b", Priority.HIGH)
            nursery.start_soon(_hold, limiter, [], "c", Priority.HIGH)
            await trio.testing.wait_all_tasks_blocked()
            stats = limiter.statistics()
            assert stats.name == "git"
            assert stats.waiting_by_priority == {"low": 1, "high": 2}
            assert stats.borrowed == 1 and stats.capacity == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_bad_capacity_is_a_typed_error(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        PriorityLimiter(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [7, -1, "urgent", 1.0, None, object()])
async def test_bad_priority_is_a_typed_error(bad: object) -> None:
    limiter = PriorityLimiter(1)
    with pytest.raises(InvalidArgumentError):
        limiter.acquire(bad)  # type: ignore[arg-type]


async def test_priority_names_are_accepted() -> None:
    limiter = PriorityLimiter(1)
    async with limiter.acquire("high"):
        assert limiter.borrowed == 1
    assert sorted([Priority.LOW, Priority.HIGH, Priority.MEDIUM]) == [
        Priority.HIGH,
        Priority.MEDIUM,
        Priority.LOW,
    ]


async def test_reentering_an_admission_is_a_typed_error() -> None:
    limiter = PriorityLimiter(2)
    cm = limiter.acquire()
    async with cm:
        with pytest.raises(ReentryError):
            async with cm:
                pass  # pragma: no cover
    assert limiter.borrowed == 0


def test_release_without_a_slot_is_refused() -> None:
    limiter = PriorityLimiter(1)
    with pytest.raises(RuntimeError):
        limiter.release()
    with pytest.raises(RuntimeError):
        limiter.release("nobody")
