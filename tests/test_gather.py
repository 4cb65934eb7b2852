"""The deadline fan-out on trio's clock (MockClock): deadlines, errors, cancellation and order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import engine
from engine import SourceStatus, gather_sources


def _after(
    seconds: float, value: str, log: list[str] | None = None
) -> Callable[[], Awaitable[str]]:
    async def call() -> str:
        try:
            await trio.sleep(seconds)
        except trio.Cancelled:
            if log is not None:
                log.append(value)
            raise
        return value

    return call


def _tasks() -> int:
    """Every task of this run, the root's included."""

    def count(task: trio.lowlevel.Task) -> int:
        return 1 + sum(count(t) for n in task.child_nurseries for t in n.child_tasks)

    return count(trio.lowlevel.current_root_task())


async def test_each_source_has_its_own_deadline(autojump_clock: trio.testing.MockClock) -> None:
    start = trio.current_time()
    out = await gather_sources(
        {"fast": _after(0.1, "f"), "slow": _after(5, "s"), "free": _after(3, "x")},
        timeouts={"fast": 1.0, "slow": 0.5},
    )
    assert trio.current_time() - start == pytest.approx(3)  # "free" has no deadline at all
    assert out["fast"].status is SourceStatus.OK and out["fast"].value == "f"
    assert out["fast"].elapsed == pytest.approx(0.1)
    assert out["slow"].status is SourceStatus.TIMEOUT and out["slow"].value is None
    assert out["slow"].elapsed == pytest.approx(0.5)
    assert out["free"].status is SourceStatus.OK and out["free"].elapsed == pytest.approx(3)


async def test_the_overall_deadline_caps_every_source(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    cancelled: list[str] = []
    out = await gather_sources(
        {
            "a": _after(0.2, "a", cancelled),
            "b": _after(2, "b", cancelled),
            "c": _after(9, "c", cancelled),
        },
        timeouts={"a": 5.0, "b": 10.0, "c": 0.5},
        deadline=start + 1.0,
    )
    assert trio.current_time() - start == pytest.approx(0.5 + 0.5)  # "c" at 0.5, "b" at 1.0
    assert [o.status for o in out.values()] == [
        SourceStatus.OK,
        SourceStatus.TIMEOUT,
        SourceStatus.TIMEOUT,
    ]
    assert out["b"].elapsed == pytest.approx(1.0) and out["c"].elapsed == pytest.approx(0.5)
    assert sorted(cancelled) == ["b", "c"]


async def test_a_deadline_already_past_times_every_source_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    out = await gather_sources(
        {"a": _after(1, "a"), "b": _after(2, "b")}, deadline=trio.current_time() - 1
    )
    assert {o.status for o in out.values()} == {SourceStatus.TIMEOUT}
    assert all(o.elapsed == 0 for o in out.values())


async def test_a_raising_source_is_reported_and_the_others_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    boom = RuntimeError("index corrupt")

    async def broken() -> str:
        await trio.sleep(0.1)
        raise boom

    async def grouped() -> str:
        async with trio.open_nursery() as n:
            n.start_soon(trio.sleep, 1)
            raise ValueError("inside a nursery")

    out = await gather_sources(
        {"ok": _after(0.3, "fine"), "broken": broken, "grouped": grouped},
        timeouts={"broken": 1.0},
    )
    assert out["ok"].status is SourceStatus.OK and out["ok"].value == "fine"
    assert out["broken"].status is SourceStatus.ERROR and out["broken"].exception is boom
    assert out["broken"].value is None and out["broken"].elapsed == pytest.approx(0.1)
    assert out["grouped"].status is SourceStatus.ERROR
    assert isinstance(out["grouped"].exception, ExceptionGroup)


async def test_results_come_in_the_given_order(autojump_clock: trio.testing.MockClock) -> None:
    names = ["e", "b", "d", "a", "c"]
    delays = {"a": 0.5, "b": 0.1, "c": 0.4, "d": 0.2, "e": 0.3}
    out = await gather_sources({n: _after(delays[n], n) for n in names})
    assert list(out) == names
    assert [o.name for o in out.values()] == names
    assert [o.value for o in out.values()] == names


async def test_a_cancelled_caller_cancels_every_source_and_leaves_no_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    before = _tasks()
    cancelled: list[str] = []
    running: list[str] = []
    seen_tasks: list[int] = []

    def source(name: str) -> Callable[[], Awaitable[str]]:
        async def call() -> str:
            running.append(name)
            seen_tasks.append(_tasks())
            return await _after(10, name, cancelled)()

        return call

    start = trio.current_time()
    with trio.move_on_after(0.5) as scope:
        await gather_sources({n: source(n) for n in "abc"}, timeouts={"a": 3.0}, deadline=start + 5)
    assert scope.cancelled_caught
    assert trio.current_time() - start == pytest.approx(0.5)
    assert sorted(running) == ["a", "b", "c"]
    assert min(seen_tasks) > before  # the sources ran in tasks of their own
    assert sorted(cancelled) == ["a", "b", "c"]  # every source saw the cancel
    assert _tasks() == before  # and none is left


async def test_bad_arguments_are_typed_errors() -> None:
    call = _after(0, "x")
    with pytest.raises(engine.InvalidArgumentError, match="unknown"):
        await gather_sources({"a": call}, timeouts={"b": 1.0})
    for bad in (0, -1.0, True, "1"):
        with pytest.raises(engine.InvalidArgumentError):
            await gather_sources({"a": call}, timeouts={"a": bad})  # type: ignore[dict-item]
    with pytest.raises(engine.InvalidArgumentError):
        await gather_sources({"a": call}, deadline=float("nan"))
    assert await gather_sources({}) == {}
