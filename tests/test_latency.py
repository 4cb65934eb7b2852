"""Latency histograms: buckets and quantiles, gate waits and holds on trio's MockClock, and in the
wired stack the database, git, context sources, rehydration and control calls on ``/metrics``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from git_repos import make_repo
from test_dashboard import http_get

import adapters
import engine
from engine.app import AppConfig, open_stack
from engine.app._control_handler import ControlHandler, DaemonInfo


def test_quantiles_interpolate_within_their_bucket() -> None:
    latencies = engine.Latencies()
    h = latencies.histogram("control", "ping")
    for _ in range(90):
        h.observe(0.003)  # the (0.0025, 0.005] bucket
    for _ in range(10):
        h.observe(0.4, ok=False)  # (0.25, 0.5]
    snap = h.snapshot()
    assert snap.calls == 100 and snap.errors == 10
    assert (h.calls, h.errors) == (100, 10)  # read in place, as the snapshot counts them
    assert dict(latencies.histograms()) == {("control", "ping"): h}
    assert snap.total == pytest.approx(90 * 0.003 + 4.0)
    assert snap.quantile(0.5) == pytest.approx(0.0025 + 0.0025 * 50 / 90)
    assert snap.quantile(0.95) == pytest.approx(0.25 + 0.25 * 5 / 10)
    assert latencies.empty().quantile(0.5) is None
    h.observe(100.0)
    assert h.snapshot().quantile(1.0) == engine.LATENCY_BUCKETS[-1]
    assert h.snapshot().minus(snap).calls == 1
    latencies.enabled = False
    h.observe(1.0)
    with latencies.time("control", "off"):
        pass
    assert h.snapshot().calls == h.calls == 101
    assert ("control", "off") not in latencies.snapshot()


def test_labels_are_bounded_per_kind() -> None:
    latencies = engine.Latencies(max_labels=2)
    a, b = latencies.histogram("control", "a"), latencies.histogram("control", "b")
    c, d = latencies.histogram("control", "c"), latencies.histogram("control", "d")
    assert c is d and len({id(a), id(b), id(c)}) == 3
    assert latencies.histogram("gate_wait", "x") is not c
    assert sorted(latencies.snapshot()) == [
        ("control", "(other)"),
        ("control", "a"),
        ("control", "b"),
        ("gate_wait", "x"),
    ]


async def test_gate_waits_and_holds_and_timed_blocks_run_on_trios_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with engine.open_engine(engine.EngineConfig(gates={"db": 1})) as eng:
        gate = eng.gate("db")
        assert engine.current_latencies() is eng.latencies

        async def hold(seconds: float) -> None:
            async with engine.admit(gate):
                await trio.sleep(seconds)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(hold, 2.0)
            nursery.start_soon(hold, 3.0)
        with pytest.raises(KeyError):
            with eng.latencies.time("control", "boom"):
                await trio.sleep(0.02)
                raise KeyError("x")
        snap = eng.latencies.snapshot()
        waits, holds = snap[("gate_wait", "db")], snap[("gate_hold", "db")]
        assert waits.calls == 2 and waits.total in (2.0, 3.0)  # one waited for the other
        assert holds.calls == 2 and holds.total == 5.0
        boom = snap[("control", "boom")]
        assert boom.errors == 1 and boom.total == pytest.approx(0.02)
    assert engine.current_latencies() is None


async def test_the_stack_times_database_git_context_rehydrate_and_control_calls(
    pg_url: str, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", files={"a.py": "print(1)\n"})
    config = AppConfig(home=tmp_path / "home", database_url=pg_url, feed_port=0, dashboard_port=0)
    with trio.fail_after(60):
        async with open_stack(config) as stack:
            record = await stack.scribe.start(repo)
            handler = ControlHandler(stack.scribe, DaemonInfo(), monitoring=stack.monitoring)
            ping = adapters.parse_control_request(b'{"op": "ping"}')
            await handler.handle(ping)

            def switch(line: bytes) -> Any:
                return handler.handle(adapters.parse_control_request(line))

            off = b'{"op": "monitoring", "args": {"enabled": false}}'
            assert await switch(off) == {"enabled": False}
            await handler.handle(ping)  # not timed while monitoring is off
            assert await switch(b'{"op": "monitoring"}') == {"enabled": False}
            on = b'{"op": "monitoring", "args": {"enabled": true}}'
            assert await switch(on) == {"enabled": True}
            unswitched = ControlHandler(stack.scribe, DaemonInfo())  # monitoring = false
            with pytest.raises(engine.InvalidArgumentError, match="monitoring = false"):
                await unswitched.handle(adapters.parse_control_request(on))
            await stack.context.context(record.id, refresh=True)
            await engine.rehydrate("print", sources=stack.memory_sources, session=record.id)
            assert stack.dashboard is not None
            status, _, body = await trio.to_thread.run_sync(
                http_get, stack.dashboard.url + "metrics"
            )
            await stack.scribe.stop(record.id)
    assert status == 200
    text = body.decode()
    for family in (
        'scribe_gate_hold_seconds_count{gate="db"}',
        'scribe_gate_hold_seconds_count{gate="git"}',
        'scribe_gate_wait_seconds_bucket{gate="db",le="+Inf"}',
        'scribe_context_source_seconds_count{source="branch"}',
        'scribe_memory_source_seconds_count{source="messages"}',
        "scribe_rehydrate_seconds_count 1.0",
        'scribe_control_seconds_count{op="ping"} 1.0',
        'scribe_context_source_errors_total{source="branch"} 0.0',
    ):
        assert family in text, family


def test_the_histograms_become_history_series() -> None:
    latencies = engine.Latencies()
    series = engine.LatencyReadings(latencies)
    for _ in range(99):
        latencies.histogram("context_source", "branch").observe(0.001)
    latencies.histogram("context_source", "branch").observe(0.2, ok=False)
    latencies.histogram("rehydrate").observe(0.04)
    first = series.readings()
    assert first.counters == {
        "latency.context_source.branch.calls": 100,
        "latency.context_source.branch.errors": 1,
        "latency.rehydrate.calls": 1,
    }
    assert first.gauges["latency.context_source.branch.p99_ms"] == pytest.approx(1.0)
    assert first.gauges["latency.rehydrate.p99_ms"] == pytest.approx(25 + 25 * 0.99)
    latencies.histogram("context_source", "branch").observe(0.3)
    second = series.readings()  # only the call since the first sample counts for the percentile
    assert second.gauges == {
        "latency.context_source.branch.p99_ms": pytest.approx(250 + 250 * 0.99)
    }
    assert all(engine.check_series_name(n) for n in (*second.gauges, *second.counters))
