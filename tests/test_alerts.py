"""Alerts: the book's firing and resolving on explicit times, and each rule with its fault caused
for real: a gate held full (trio's MockClock), the event loop blocked, a memory source failing,
the home's disk past its threshold. The database going down and the carried backlog are caused
in ``test_health_outage`` on the real stack."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio
import trio.testing
from webhook_support import Receiver

import adapters
import engine
from engine.app import load_config
from engine.app._alerting import MIN_CALLS, AlertJudge, AlertRules
from engine.app._config_setting import ConfigError
from engine.app._monitor_settings import MonitorSettings


def test_an_alert_fires_after_its_hold_and_resolves_after_staying_clear() -> None:
    book = engine.AlertBook(clear_for=2.0, max_alerts=2)
    on = engine.AlertCheck(True, "too slow", value=9.0, threshold=5.0, hold=3.0)
    off = engine.AlertCheck(False, "fine", value=1.0, threshold=5.0, hold=3.0)
    assert book.update(0.0, 100.0, {"a": on}) == []
    assert book.update(2.0, 102.0, {"a": off}) == []  # cleared before its hold: forgotten
    assert book.update(3.0, 103.0, {"a": on}) == []
    fired = book.update(6.0, 106.0, {"a": on})
    assert fired == [engine.Alert("a", "firing", "too slow", 9.0, 5.0, 106.0)]
    assert book.firing() == fired and not book.health().ok
    assert book.health().problem == "a: too slow"
    assert book.update(7.0, 107.0, {"a": off}) == []
    assert book.update(7.5, 107.5, {"a": on}) == []  # active again: the clear time restarts
    assert book.update(8.0, 108.0, {}) == []  # no check given: clear
    resolved = book.update(10.0, 110.0, {})
    assert resolved == [engine.Alert("a", "resolved", "too slow", None, 5.0, 110.0)]
    assert book.health().ok and book.firing() == []
    assert (book.fired, book.resolved) == (1, 1)
    now = engine.AlertCheck(True, "x" * 900)
    changed = book.update(11.0, 111.0, {"b": now, "c": now, "d": now})
    assert [a.name for a in changed] == ["b", "c"] and len(changed[0].message) == 500


def _judging(
    rules: AlertRules,
    book: engine.AlertBook,
    eng: engine.Engine,
    interval: float = 1.0,
    switch: engine.MonitoringSwitch | None = None,
) -> functools.partial[object]:
    """The alerts judged as the daemon judges them: on the metric history's tick (one a second
    here, the judge every ``interval``)."""
    judge = AlertJudge(
        rules,
        book,
        lambda alert: eng.publish_nowait("health.alert", alert.as_dict()),
        interval=interval,
    )
    return functools.partial(
        engine.run_metric_history,
        engine.MetricHistory(),
        engine.Readings,
        interval=min(1.0, interval),
        switch=switch,
        after_sample=judge.tick_nowait,
    )


def _fill(nursery: trio.Nursery, gate: engine.PriorityLimiter, release: trio.Event) -> None:
    """Hold the one slot of ``gate`` and queue a second task for it, both until ``release``."""

    async def hold() -> None:
        async with engine.admit(gate):
            await release.wait()

    nursery.start_soon(hold)
    nursery.start_soon(hold)


def _rules(eng: engine.Engine, home: Path, **settings: float) -> AlertRules:
    return AlertRules(
        MonitorSettings(**settings),  # type: ignore[arg-type]
        gates=eng.gates,
        latencies=eng.latencies,
        checks=dict,
        home=home,
    )


async def test_a_gate_held_full_fires_after_its_seconds_and_resolves(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with engine.open_engine(engine.EngineConfig(gates={"git": 1})) as eng:
        rules = _rules(eng, tmp_path, alert_gate_saturated_seconds=30.0, alert_for_seconds=2.0)
        book = engine.AlertBook(clear_for=2.0)
        async with eng.open_subscription(["health.alert"]) as events:
            eng.start_service(_judging(rules, book, eng), name="alerts")
            release = trio.Event()
            async with trio.open_nursery() as nursery:
                _fill(nursery, eng.gate("git"), release)  # full with one waiting
                await trio.sleep(29.5)  # saturated since 0 or 1 (the first judgement)
                assert book.firing() == []
                await trio.sleep(2.0)
                assert [a.name for a in book.firing()] == ["gate_saturated:git"]
                release.set()
            event = await events.receive()
            assert event.payload["state"] == "firing"
            assert event.payload["message"] == "gate git is full (1/1) with 1 waiting"
            assert engine.route_engine_event(event.topic, event.payload, None) == (
                "health",
                "alert:gate_saturated:git",
            )
            event = await events.receive()
            assert (event.payload["name"], event.payload["state"]) == (
                "gate_saturated:git",
                "resolved",
            )
        assert book.firing() == []


async def test_switched_off_no_rule_is_judged_and_alerts_keep_their_state(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with engine.open_engine(engine.EngineConfig(gates={"git": 1})) as eng:
        rules = _rules(eng, tmp_path, alert_gate_saturated_seconds=5.0, alert_for_seconds=2.0)
        book = engine.AlertBook(clear_for=2.0)
        switch = engine.MonitoringSwitch(eng.latencies, enabled=False)
        eng.start_service(_judging(rules, book, eng, switch=switch), name="alerts")
        release = trio.Event()
        async with trio.open_nursery() as nursery:
            _fill(nursery, eng.gate("git"), release)  # full with one waiting from now on
            await trio.sleep(60.0)
            assert book.firing() == [] and book.fired == 0  # off: nothing judged
            switch.set_nowait(True)
            await trio.sleep(7.5)
            assert [a.name for a in book.firing()] == ["gate_saturated:git"]
            switch.set_nowait(False)
            release.set()
            await trio.sleep(60.0)
            # off: the fault is gone but nothing judged it, so the alert still stands
            assert [a.name for a in book.firing()] == ["gate_saturated:git"]
            switch.set_nowait(True)
            await trio.sleep(5.0)
            assert book.firing() == [] and (book.fired, book.resolved) == (1, 1)


async def test_a_blocked_event_loop_fires_loop_lag(tmp_path: Path) -> None:
    async with engine.open_engine() as eng:
        rules = _rules(eng, tmp_path, alert_loop_lag_ms=100.0, alert_for_seconds=0.0)
        book = engine.AlertBook(clear_for=0.0)
        async with eng.open_subscription(["health.alert"]) as events:
            eng.start_service(_judging(rules, book, eng, 0.02), name="alerts")
            await trio.sleep(0.05)
            time.sleep(0.3)  # noqa: ASYNC251 - the fault: the trio thread blocked
            with trio.fail_after(10):
                fired = await events.receive()
                resolved = await events.receive()
    assert (fired.payload["name"], fired.payload["state"]) == ("loop_lag", "firing")
    assert fired.payload["value"] >= 100.0 and fired.payload["threshold"] == 100.0
    assert (resolved.payload["name"], resolved.payload["state"]) == ("loop_lag", "resolved")


class BrokenSource:
    """A memory source whose search fails (the fault), as a broken index would."""

    name = "broken"

    async def search(self, query: engine.SourceQuery) -> Sequence[engine.Evidence]:
        await trio.lowlevel.checkpoint()
        raise engine.ScribeError("the index is corrupt")


async def test_a_failing_memory_source_fires_over_its_share_of_calls(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with engine.open_engine() as eng:
        rules = _rules(eng, tmp_path, alert_source_failure_percent=50.0, alert_for_seconds=1.0)
        book = engine.AlertBook(clear_for=1.0)
        eng.start_service(_judging(rules, book, eng), name="alerts")
        for _ in range(MIN_CALLS):
            bundle = await engine.rehydrate("why", sources=[BrokenSource()])
            assert bundle.sources[0].status is engine.SourceStatus.ERROR
        await trio.sleep(3.0)
        (alert,) = book.firing()
        assert alert.name == "source_failing:memory_source:broken"
        assert (
            alert.message
            == f"memory source broken failed {MIN_CALLS} of its last {MIN_CALLS} calls"
        )
        assert alert.value == 100.0
        await trio.sleep(320.0)  # the failures leave the window (300 s, kept by 10 s steps)
        assert book.firing() == []


async def test_the_home_disk_past_its_threshold_fires(tmp_path: Path) -> None:
    st = os.statvfs(tmp_path)
    used = 100.0 * (1 - st.f_bavail / st.f_blocks)
    async with engine.open_engine() as eng:
        full = _rules(eng, tmp_path, alert_disk_percent=max(used - 1.0, 0.001))
        check = full.judge(trio.current_time(), None)["disk"]
        assert check.active and check.threshold == max(used - 1.0, 0.001)
        roomy = _rules(eng, tmp_path, alert_disk_percent=100.0)
        assert not roomy.judge(trio.current_time(), None)["disk"].active or used >= 100.0
        gone = _rules(eng, tmp_path / "missing")
        assert not gone.judge(trio.current_time(), None)["disk"].active


async def test_the_webhook_retries_a_bounded_number_of_times_and_drops_past_its_queue() -> None:
    refusing = Receiver(refuse=1000)
    try:
        hook = adapters.Webhook(refusing.url, retries=2, backoff=0.01, max_queued=2)
        for i in range(3):
            hook.post_nowait({"n": i})
        assert hook.statistics() == adapters.WebhookStatistics(2, 0, 0, 1, 0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(hook.run)
            with trio.fail_after(30):
                while hook.statistics().failed < 2:  # noqa: ASYNC110 - the state is behind HTTP
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        assert hook.statistics() == adapters.WebhookStatistics(0, 0, 2, 1, 6)
        assert refusing.seen == 6 and refusing.posts == []
    finally:
        refusing.close()
    with pytest.raises(engine.InvalidArgumentError):
        adapters.Webhook("ftp://x")


def test_thresholds_come_from_the_config_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("alert_loop_lag_ms = 100\nalert_backlog_entries = 7\nmonitoring = false\n")
    env = {"SCRIBE_ALERT_WEBHOOK_URL": "https://hooks.example/x", "XDG_CONFIG_HOME": "/none"}
    config = load_config(config_file=path, environ=env)
    assert (config.alert_loop_lag_ms, config.alert_backlog_entries) == (100.0, 7)
    assert config.alert_webhook_url == "https://hooks.example/x" and not config.monitoring
    defaults = load_config(environ={"XDG_CONFIG_HOME": "/none"})
    assert defaults.monitoring and defaults.metric_retention_days == 30.0
    assert defaults.alert_gate_saturated_seconds == 30.0 and defaults.alert_webhook_url is None
    for bad in (
        "alert_disk_percent = 0\n",
        "alert_source_failure_percent = 101\n",
        "alert_webhook_url = 'ftp://x'\n",
        "metric_retention_days = 400\n",
        "alert_backlog_entries = 1.5\n",
    ):
        path.write_text(bad)
        with pytest.raises(ConfigError, match=bad.split(" ")[0]):
            load_config(config_file=path, environ={})


def _flood(root: Path) -> None:
    """Make more files than the kernel queues events (each is an IN_CREATE at least), on the trio
    thread, so the watcher reads none meanwhile."""
    queued = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    for i in range(queued + 10):
        (root / f"f{i}").touch()


async def test_a_watcher_overflow_and_watches_near_the_limit_fire(tmp_path: Path) -> None:
    tracker = adapters.WatcherTracker()
    root = tmp_path / "tree"
    root.mkdir()
    async with engine.open_engine() as eng:
        rules = AlertRules(
            MonitorSettings(alert_watch_percent=1e-9),
            gates=eng.gates,
            latencies=eng.latencies,
            checks=dict,
            home=tmp_path,
            watches=tracker.totals,
        )
        with trio.fail_after(60):
            async with tracker.open(root, gitignore=False, reconcile_interval=None) as watcher:
                checks = rules.judge(trio.current_time(), None)
                assert not checks["watcher_overflow"].active
                limit = checks["watch_limit"]
                assert limit.active and limit.message.startswith("1 of the system's ")
                _flood(root)  # the fault: more events than the kernel queues, none read
                await watcher.__anext__()
                assert tracker.totals().overflows >= 1
                assert rules.judge(trio.current_time(), None)["watcher_overflow"].active
    assert tracker.totals() == adapters.WatchTotals(0, 0, 1, tracker.totals().max_user_watches)


async def test_the_judge_judges_every_interval_of_its_ticks_with_their_worst_lag(
    tmp_path: Path,
) -> None:
    async with engine.open_engine() as eng:
        rules = _rules(eng, tmp_path, alert_loop_lag_ms=100.0, alert_for_seconds=0.0)
        changes: list[engine.Alert] = []
        judge = AlertJudge(rules, engine.AlertBook(clear_for=0.0), changes.append, interval=2.0)
        judge.tick_nowait(0.0, None)  # the first tick judges: nothing wrong
        judge.tick_nowait(1.0, 0.5)  # woke 500 ms late, but not judged on this tick
        assert changes == [] and judge.book.firing() == []
        judge.tick_nowait(2.0, 0.0)  # judged with the worst lag since the last judgement
        assert [(a.name, a.state, a.value) for a in changes] == [("loop_lag", "firing", 500.0)]
        judge.tick_nowait(3.0, 0.0)
        judge.tick_nowait(3.995, 0.0)  # a hundredth of a second early still counts
        assert [(a.name, a.state) for a in changes[1:]] == [("loop_lag", "resolved")]
        with pytest.raises(engine.InvalidArgumentError):
            AlertJudge(rules, judge.book, changes.append, interval=0.0)
