"""engine.concurrently: every call at once, results in order, the first failure raised as itself
with the other calls cancelled, and a cancellation from outside cancels them all."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import engine


async def test_results_come_in_the_order_given(autojump_clock: trio.testing.MockClock) -> None:
    started: list[str] = []

    async def after(delay: float, value: str) -> str:
        started.append(value)
        await trio.sleep(delay)
        return value

    t0 = trio.current_time()
    got = await engine.concurrently(
        lambda: after(3, "slow"), lambda: after(1, "fast"), lambda: after(2, "middle")
    )
    assert got == ["slow", "fast", "middle"]
    assert trio.current_time() - t0 == pytest.approx(3)  # at once, not one after another
    assert sorted(started) == ["fast", "middle", "slow"]
    assert await engine.concurrently() == []


async def test_the_first_failure_is_raised_as_itself_and_cancels_the_rest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[str] = []

    async def waits() -> None:
        try:
            await trio.sleep(10)
        except trio.Cancelled:
            cancelled.append("waits")
            raise

    async def fails() -> None:
        await trio.sleep(1)
        raise engine.InvalidArgumentError("bad input")

    t0 = trio.current_time()
    with pytest.raises(engine.InvalidArgumentError, match="bad input"):  # not an ExceptionGroup
        await engine.concurrently(waits, fails)
    assert cancelled == ["waits"]
    assert trio.current_time() - t0 == pytest.approx(1)


async def test_a_cancellation_from_outside_cancels_every_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    cancelled: list[int] = []

    async def waits(i: int) -> None:
        try:
            await trio.sleep(10)
        except trio.Cancelled:
            cancelled.append(i)
            raise

    with trio.move_on_after(2) as scope:
        await engine.concurrently(lambda: waits(1), lambda: waits(2))
    assert scope.cancelled_caught
    assert sorted(cancelled) == [1, 2]
