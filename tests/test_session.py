"""Sessions: isolation, supervision, grace, subtrees, admission under the session's priority."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing

import engine
from engine import (
    AdmissionQueueFullError,
    Engine,
    Priority,
    PriorityLimiter,
    Restart,
    RestartLimitError,
    RestartPolicy,
    SessionClosedError,
    SessionLimits,
    SessionState,
    TooManyTasksError,
)


async def _boom() -> None:
    await trio.sleep(0.1)
    raise RuntimeError("boom")


async def test_a_failing_task_fails_only_its_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with engine.open_engine() as eng:
        bad = await eng.start_session("bad")
        good = await eng.start_session("good")
        survived = trio.Event()

        async def steady() -> None:
            await trio.sleep(1)
            survived.set()

        async def victim() -> None:
            await trio.sleep_forever()

        bad.start_soon(victim)
        bad.start_soon(_boom)
        good.start_soon(steady)
        await bad.wait()
        assert bad.state is SessionState.FAILED
        assert isinstance(bad.error, RuntimeError)
        assert good.state is SessionState.ACTIVE
        await survived.wait()
        await good.close()
        assert good.state is SessionState.COMPLETED and good.error is None


async def test_keyboard_interrupt_is_never_swallowed() -> None:
    async def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.RaisesGroup(KeyboardInterrupt, flatten_subgroups=True):
        async with engine.open_engine() as eng:
            s = await eng.start_session("s")
            s.start_soon(interrupt)
            await trio.sleep_forever()


async def test_cancelling_a_session_cancels_its_subtree_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with engine.open_engine() as eng:
        parent = await eng.start_session("parent")
        child = await eng.start_session("child", parent=parent)
        grandchild = await eng.start_session("grandchild", parent=child)
        sibling = await eng.start_session("sibling")
        for s in (parent, child, grandchild, sibling):
            s.start_soon(trio.sleep_forever)
        assert [c.id for c in parent.children] == [child.id]
        child.cancel()
        await grandchild.wait()
        await child.wait()
        assert grandchild.state is SessionState.CANCELLED
        assert child.state is SessionState.CANCELLED
        assert parent.state is SessionState.ACTIVE and sibling.state is SessionState.ACTIVE
        assert parent.children == ()
        parent.cancel()
        await parent.wait()
        assert sibling.state is SessionState.ACTIVE
        t0 = trio.current_time()
    # shutdown gives the sibling its grace period, then cancels it
    assert sibling.state is SessionState.CANCELLED
    assert trio.current_time() - t0 == pytest.approx(eng.config.shutdown_grace)


async def test_a_child_failure_does_not_touch_the_parent() -> None:
    async with engine.open_engine() as eng:
        parent = await eng.start_session("parent")
        child = await eng.start_session("child", parent=parent)
        child.start_soon(_boom)
        await child.wait()
        assert child.state is SessionState.FAILED
        assert parent.state is SessionState.ACTIVE
        await parent.close()
        assert parent.state is SessionState.COMPLETED


async def test_grace_lets_tasks_flush_then_hard_cancels(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with engine.open_engine() as eng:
        s = await eng.start_session("s")

        async def polite() -> None:
            await s.wait_stop_requested()
            await trio.sleep(1)
            log.append("flushed")

        async def stubborn() -> None:
            try:
                await trio.sleep_forever()
            finally:
                log.append(f"stubborn cancelled at {trio.current_time():.1f}")

        s.start_soon(polite)
        s.start_soon(stubborn)
        await trio.testing.wait_all_tasks_blocked()
        t0 = trio.current_time()
        s.cancel(grace=5)
        assert s.state is SessionState.STOPPING and s.stop_requested
        await s.wait()
        assert s.state is SessionState.CANCELLED
        assert trio.current_time() - t0 == pytest.approx(5)
    assert log == ["flushed", f"stubborn cancelled at {t0 + 5:.1f}"]


async def test_open_session_closes_gracefully_and_sets_current_session() -> None:
    done: list[str] = []
    async with engine.open_engine() as eng:
        async with eng.open_session("ctx", priority=Priority.HIGH) as s:
            assert engine.current_session() is s

            async def work() -> None:
                assert engine.current_session() is s
                await trio.sleep(0.01)
                done.append("work")

            s.start_soon(work)
        assert engine.current_session() is None
        assert s.state is SessionState.COMPLETED
        assert done == ["work"]


async def test_open_session_body_error_cancels_the_session() -> None:
    async with engine.open_engine() as eng:
        with pytest.raises(ValueError, match="body"):
            async with eng.open_session("ctx") as s:
                s.start_soon(trio.sleep_forever)
                raise ValueError("body")
        assert s.state is SessionState.CANCELLED


async def test_open_session_is_single_use() -> None:
    async with engine.open_engine() as eng:
        cm = eng.open_session("once")
        async with cm:
            pass
        with pytest.raises(engine.ReentryError):
            async with cm:
                pass  # pragma: no cover


async def test_admission_follows_session_priority(autojump_clock: trio.testing.MockClock) -> None:
    limiter = PriorityLimiter(1, aging_interval=None)
    order: list[str] = []
    async with engine.open_engine() as eng:
        sessions = {
            p: await eng.start_session(p.name, priority=p)
            for p in (Priority.LOW, Priority.MEDIUM, Priority.HIGH)
        }

        async def job(label: str) -> None:
            async with engine.admit(limiter):  # priority found through the current session
                order.append(label)
                await trio.sleep(1)

        async with limiter.acquire():
            for p, s in sessions.items():
                s.start_soon(job, p.name)
            await trio.testing.wait_all_tasks_blocked()
        for s in sessions.values():
            await s.close()
    assert order == ["HIGH", "MEDIUM", "LOW"]


async def test_session_quota_and_queue_limit(autojump_clock: trio.testing.MockClock) -> None:
    limiter = PriorityLimiter(4)
    async with engine.open_engine() as eng:
        s = await eng.start_session("s", limits=SessionLimits(quota=1, max_queued=2))
        peak = 0
        held = 0
        rejected: list[BaseException] = []

        async def job() -> None:
            nonlocal peak, held
            try:
                async with s.admit(limiter):
                    held += 1
                    peak = max(peak, held)
                    await trio.sleep(1)
                    held -= 1
            except AdmissionQueueFullError as exc:
                rejected.append(exc)

        for _ in range(5):
            s.start_soon(job)
        await s.close()
        assert peak == 1
        assert len(rejected) == 2  # one holds, two queue, two are refused
        assert limiter.statistics().borrowed == 0


async def test_paused_session_holds_back_admissions(autojump_clock: trio.testing.MockClock) -> None:
    limiter = PriorityLimiter(2)
    got: list[float] = []
    async with engine.open_engine() as eng:
        s = await eng.start_session("s")
        s.pause()
        assert s.state is SessionState.PAUSED

        async def job() -> None:
            async with s.admit(limiter):
                got.append(trio.current_time())

        s.start_soon(job)
        await trio.sleep(3)
        assert got == []
        s.resume()
        assert s.state is SessionState.ACTIVE
        await trio.testing.wait_all_tasks_blocked()
        assert got == [pytest.approx(3)]
        await s.close()


async def test_closed_session_refuses_work_and_task_limit() -> None:
    async with engine.open_engine() as eng:
        s = await eng.start_session("s", limits=SessionLimits(max_tasks=1))
        s.start_soon(trio.sleep_forever)
        with pytest.raises(TooManyTasksError):
            s.start_soon(trio.sleep_forever)
        s.cancel()
        with pytest.raises(SessionClosedError):
            s.start_soon(trio.sleep, 0)
        await s.wait()
        with pytest.raises(SessionClosedError):
            async with s.admit(PriorityLimiter(1)):
                pass  # pragma: no cover
        with pytest.raises(SessionClosedError):
            await eng.start_session("late child", parent=s)


async def test_transient_service_restarts_then_fails_the_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runs: list[float] = []

    async def flaky() -> None:
        runs.append(trio.current_time())
        raise OSError("watch lost")

    policy = RestartPolicy(
        restart=Restart.TRANSIENT, max_restarts=3, period=10, backoff_initial=0.5
    )
    async with engine.open_engine() as eng:
        s = await eng.start_session("s")
        other = await eng.start_session("other")
        async with eng.open_subscription(["session.service"]) as sub:
            s.start_service(flaky, name="watcher", policy=policy)
            await s.wait()
            restarts = [sub.receive_nowait().payload["restarts"] for _ in range(3)]
        assert restarts == [1, 2, 3]
        assert s.state is SessionState.FAILED
        assert isinstance(s.error, RestartLimitError)
        assert isinstance(s.error.__cause__, OSError)
        assert len(runs) == 4
        gaps = [b - a for a, b in itertools.pairwise(runs)]
        assert gaps == [pytest.approx(0.5), pytest.approx(1.0), pytest.approx(2.0)]
        assert other.state is SessionState.ACTIVE


async def test_transient_service_that_returns_is_not_restarted() -> None:
    runs = 0

    async def once() -> None:
        nonlocal runs
        runs += 1

    async with engine.open_engine() as eng:
        s = await eng.start_session("s")
        s.start_service(once, policy=RestartPolicy(restart=Restart.TRANSIENT))
        await s.close()
    assert runs == 1 and s.state is SessionState.COMPLETED


async def test_permanent_service_restarts_after_return(
    autojump_clock: trio.testing.MockClock,
) -> None:
    runs = 0

    async def loop_body() -> None:
        nonlocal runs
        runs += 1
        await trio.sleep(20)  # longer than the period: the restart budget never runs out

    async with engine.open_engine() as eng:
        s = await eng.start_session("s")
        s.start_service(loop_body, policy=RestartPolicy(restart=Restart.PERMANENT, period=5))
        await trio.sleep(100)
        assert s.state is SessionState.ACTIVE
        s.cancel()
        await s.wait()
    assert runs >= 5


async def test_temporary_service_error_fails_the_session_without_restart() -> None:
    runs = 0

    async def fragile() -> None:
        nonlocal runs
        runs += 1
        raise ValueError("once")

    async with engine.open_engine() as eng:
        s = await eng.start_session("s")
        s.start_service(fragile, policy=RestartPolicy(restart=Restart.TEMPORARY))
        await s.wait()
    assert runs == 1 and isinstance(s.error, ValueError) and s.state is SessionState.FAILED


async def test_state_events_follow_the_table() -> None:
    async with engine.open_engine() as eng:
        async with eng.open_subscription(["session.state"]) as sub:
            s = await eng.start_session("s", tags=("a",))
            s.add_tags("b")
            s.pause()
            s.resume()
            s.start_soon(_boom)
            await s.wait()
            states = []
            while True:
                try:
                    ev = sub.receive_nowait()
                except trio.WouldBlock:
                    break
                assert ev.session_id == s.id
                states.append(ev.payload["state"])
    assert states == ["active", "active", "paused", "active", "failed"]
    for a, b in itertools.pairwise(states):
        assert a == b or SessionState(b) in engine.TRANSITIONS[SessionState(a)]


async def test_session_info_and_tags() -> None:
    async with engine.open_engine() as eng:
        s = await eng.start_session(
            "B-1042 work", priority="low", kind="debug", tags=("x", "x", "y"), backlog_id="B-1042"
        )
        s.remove_tags("x")
        info = s.info()
        assert info.tags == ("y",) and info.priority is Priority.LOW
        assert info.kind is engine.SessionKind.DEBUG and info.backlog_id == "B-1042"
        assert info.as_dict()["state"] == "active"
        with pytest.raises(TypeError):
            engine.Session()  # no public constructor
        assert isinstance(eng, Engine)


async def test_a_cancelled_wait_leaves_the_session_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with engine.open_engine() as eng:
        s = await eng.start_session("s")
        s.start_soon(trio.sleep_forever)
        with trio.move_on_after(1):
            await s.wait()
        assert s.state is SessionState.ACTIVE
        # a cancelled close(), by contrast, cancels the session it was closing
        with trio.move_on_after(1):
            await s.close()
        assert s.state is SessionState.CANCELLED


async def test_close_reaches_every_descendant(autojump_clock: trio.testing.MockClock) -> None:
    async with engine.open_engine() as eng:
        parent = await eng.start_session("parent")
        child = await eng.start_session("child", parent=parent)
        grandchild = await eng.start_session("grandchild", parent=child)
        with trio.fail_after(60):
            await parent.close()
        assert [s.state for s in (grandchild, child, parent)] == [engine.SessionState.COMPLETED] * 3
