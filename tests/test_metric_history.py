"""The metric history: the ring and its roll-ups, the sampler on trio's MockClock, ranges from the
ring and from a store, and minutes kept while the store fails."""

from __future__ import annotations

import math
import sys
from collections.abc import Collection, Sequence

import pytest
import trio
import trio.testing

import engine
import engine.testing

T0 = 1_800_000_000.0 - 1_800_000_000.0 % 60


def test_the_ring_rolls_minutes_up_and_keeps_its_bound() -> None:
    ring = engine.MetricRing(capacity=90, max_series=2)
    closed = [ring.record_nowait(T0 + i, {"a": float(i), "b": 1.0}) for i in range(60)]
    assert closed == [None] * 60
    first = ring.record_nowait(T0 + 60, {"a": 100.0, "b": 1.0, "c": 5.0})
    assert first == engine.MinuteRollup(T0, {"a": (29.5, 59.0), "b": (1.0, 1.0)}, 60)
    for i in range(61, 120):
        ring.record_nowait(T0 + i, {"a": 1.0, "bad": math.nan, "x" * 121: 1.0})
    assert ring.record_nowait(T0 + 10, {"a": 1.0}) is None  # older than the last: dropped
    stats = ring.statistics()
    assert (stats.samples, stats.capacity, stats.minutes_closed) == (90, 90, 1)
    assert stats.dropped_values == 1 + 2 * 59 + 1
    assert ring.oldest == T0 + 30
    assert ring.open_minute() == engine.MinuteRollup(
        T0 + 60, {"a": ((100.0 + 59) / 60, 100.0), "b": (1.0, 1.0)}, 60
    )


def test_the_ring_holds_columns_that_wrap_and_make_room() -> None:
    ring = engine.MetricRing(capacity=4, max_series=2)
    ring.record_nowait(T0, {"a": 1.0, "b": 2.0})
    ring.record_nowait(T0 + 1, {"a": 3.0, "b": math.inf})  # b: no finite value, so none
    ring.record_nowait(T0 + 2, {"a": 5.0})
    assert ring.record_nowait(T0 + 3, {"a": 7.0, "c": 1.0}) is None  # no room for c: b is held
    assert ring.range(["a", "b", "c"], T0, T0 + 4) == {
        "a": [(T0 + i, 1.0 + 2 * i, 1.0 + 2 * i) for i in range(4)],
        "b": [(T0, 2.0, 2.0)],
        "c": [],
    }
    assert ring.statistics().dropped_values == 2
    ring.record_nowait(T0 + 4, {"c": 9.0})  # overwrites b's one value: room made for c
    assert ring.names() == ["c"] and ring.oldest == T0 + 1
    assert ring.range(["a", "b", "c"], T0, T0 + 5) == {
        "a": [(T0 + 1 + i, 3.0 + 2 * i, 3.0 + 2 * i) for i in range(3)],  # T0 wrapped away
        "b": [],
        "c": [(T0 + 4, 9.0, 9.0)],
    }
    assert ring.statistics().series == 2


def test_a_sample_adds_nothing_to_the_heap() -> None:
    ring = engine.MetricRing(capacity=3600)
    values = {f"series.{i}": float(i) for i in range(100)}
    for i in range(10):
        ring.record_nowait(T0 + i, values)
    before = sys.getallocatedblocks()
    for i in range(10, 2010):
        ring.record_nowait(T0 + i, values)
    # a ring of dicts holds 2000 more of them (and their floats); columns hold the numbers
    assert sys.getallocatedblocks() - before < 1000
    assert ring.statistics().samples == 2010


def test_a_range_of_the_ring_is_downsampled_to_its_point_budget() -> None:
    ring = engine.MetricRing()
    for i in range(600):
        ring.record_nowait(T0 + i, {"use": float(i % 10)})
    points = ring.range(["use", "other"], T0, T0 + 600, max_points=60)
    assert points["other"] == []
    assert len(points["use"]) == 60
    assert points["use"][0] == (T0, 4.5, 9.0)
    assert ring.range(["use"], T0 + 5, T0 + 8)["use"] == [
        (T0 + 5, 5.0, 5.0),
        (T0 + 6, 6.0, 6.0),
        (T0 + 7, 7.0, 7.0),
    ]
    assert ring.range(["use"], T0 + 8, T0 + 8)["use"] == []


@pytest.mark.parametrize("names", ["one", [""], ["a b"], ["é"], [f"s{i}" for i in range(65)], [3]])
def test_series_names_are_checked(names: object) -> None:
    with pytest.raises(engine.InvalidArgumentError):
        engine.check_series_names(names)  # type: ignore[arg-type]


async def test_the_sampler_samples_each_second_with_rates_and_loop_lag(
    autojump_clock: trio.testing.MockClock,
) -> None:
    history = engine.MetricHistory(engine.MetricRing(capacity=300))
    count = 0

    def collect() -> engine.Readings:
        nonlocal count
        count += 3
        return engine.Readings({"gauge": 7.0}, {"things": float(count)})

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: engine.run_metric_history(
                history, collect, wall=lambda: T0 + trio.current_time(), task_status=task_status
            )
        )
        await trio.sleep(119.5)
        nursery.cancel_scope.cancel()
    assert history.statistics().samples == 120
    got = await history.range(["gauge", "things.rate", "loop.lag_ms"], T0, T0 + 120)
    assert got.source == "ring" and got.step == 1.0
    assert len(got.series["gauge"]) == 120
    assert {p[1] for p in got.series["things.rate"]} == {3.0}
    assert {p[1] for p in got.series["loop.lag_ms"]} == {0.0}
    assert history.statistics().pending == 0  # no store: nothing queued


async def test_a_failing_after_sample_stops_no_sample(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    history = engine.MetricHistory(engine.MetricRing(capacity=300))
    ticks: list[tuple[float, float | None]] = []

    def after(now: float, lag: float | None) -> None:
        ticks.append((now, lag))
        if len(ticks) % 2 == 0:
            raise ValueError("a broken rule")

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: engine.run_metric_history(
                history, engine.Readings, after_sample=after, task_status=task_status
            )
        )
        await trio.sleep(9.5)
        nursery.cancel_scope.cancel()
    assert history.statistics().samples == 10
    assert [now for now, _ in ticks] == [float(i) for i in range(10)]
    assert ticks[0][1] is None and {lag for _, lag in ticks[1:]} == {0.0}
    failures = [r for r in caplog.records if "after_sample failed" in r.getMessage()]
    assert len(failures) == 1 and "a broken rule" in failures[0].getMessage()  # once a minute


async def test_switched_off_the_sampler_takes_nothing_and_times_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    history = engine.MetricHistory(engine.MetricRing(capacity=300))
    latencies = engine.Latencies()
    switch = engine.MonitoringSwitch(latencies)
    timed = latencies.histogram("control", "ping")
    collected: list[float] = []
    count = 0

    def collect() -> engine.Readings:
        nonlocal count
        count += 2
        collected.append(trio.current_time())
        return engine.Readings({}, {"things": float(count)})

    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: engine.run_metric_history(
                history,
                collect,
                wall=lambda: T0 + trio.current_time(),
                switch=switch,
                task_status=task_status,
            )
        )
        await trio.sleep(9.5)
        timed.observe(0.001)
        switch.set_nowait(False)
        assert not latencies.enabled and not switch.enabled
        timed.observe(0.001)  # not counted while off
        await trio.sleep(100.0)
        assert len(collected) == 10  # none while off
        switch.set_nowait(True)
        timed.observe(0.001)
        await trio.sleep(9.5)
        nursery.cancel_scope.cancel()
    assert timed.calls == 2
    assert history.statistics().samples == 20
    assert collected[10] == pytest.approx(109.5)  # at once when switched back on
    got = await history.range(["things.rate"], T0, T0 + 200)
    rates = got.series["things.rate"]
    # the first sample back has no rate (no span was measured), the next ones the real one
    assert len(rates) == 9 + 9 and {p[1] for p in rates} == {2.0}


class FailingStore:
    """The in-memory store, its writes failing while ``down`` (the fault the history rides out)."""

    def __init__(self) -> None:
        self.inner = engine.testing.InMemoryMetricStore()
        self.down = True
        self.hang = False
        self.swept_before: list[float] = []

    async def put_minutes(self, minutes: Sequence[engine.MinuteRollup]) -> None:
        if self.down:
            raise engine.ScribeError("the store is down")
        await self.inner.put_minutes(minutes)

    async def minutes(
        self, names: Collection[str], since: float, until: float
    ) -> list[engine.MinuteRollup]:
        if self.hang:
            await trio.sleep_forever()
        return await self.inner.minutes(names, since, until)

    async def sweep(self, before: float, *, max_rows: int) -> int:
        self.swept_before.append(before)
        if self.down:
            raise engine.ScribeError("the store is down")
        return await self.inner.sweep(before, max_rows=max_rows)


async def test_the_engines_series_read_its_gates_in_place(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with engine.open_engine(engine.EngineConfig(gates={"db": 2})) as eng:
        gate = eng.gate("db")

        async def hold() -> None:
            async with engine.admit(gate):
                await trio.sleep(10)

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(hold)
            await trio.testing.wait_all_tasks_blocked()
            busy = engine.engine_readings(eng)
            stats = eng.statistics().gates["db"]
        assert eng.gates() == {"db": gate} and eng.statistics(gates=False).gates == {}
        assert (stats.capacity, stats.borrowed, stats.waiting) == (2, 2, 1)
        assert busy.gauges["gate.db.capacity"] == 2 and busy.gauges["gate.db.borrowed"] == 2
        assert busy.gauges["gate.db.waiting"] == 1 and busy.gauges["gate.db.use"] == 1.0
        assert busy.counters["gate.db.granted"] == stats.granted_total == 2
        idle = engine.engine_readings(eng)
        assert idle.counters["gate.db.granted"] == gate.granted_total == 3
        assert idle.gauges["gate.db.borrowed"] == 0 and idle.gauges["gate.db.waiting"] == 0
        assert idle.counters["gate.db.cancelled"] == idle.counters["gate.db.rejected"] == 0
        assert idle.gauges["sessions.live"] == 0 and "events.published" in idle.counters


async def test_minutes_wait_while_the_store_fails_and_ranges_come_from_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FailingStore()
    history = engine.MetricHistory(
        engine.MetricRing(capacity=120), store, retention=3600.0, max_pending=3
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: engine.run_metric_history(
                history,
                lambda: engine.Readings({"gauge": trio.current_time() // 60}),
                wall=lambda: T0 + trio.current_time(),
                sweep_interval=600.0,
                task_status=task_status,
            )
        )
        await trio.sleep(5 * 60 + 1)
        stats = history.statistics()
        assert (stats.pending, stats.stored, stats.dropped_minutes) == (3, 0, 2)
        assert stats.store_errors >= 2
        store.down = False
        await trio.sleep(10)
        assert history.statistics().pending == 0 and history.statistics().stored == 3
        await trio.sleep(10 * 60)
        nursery.cancel_scope.cancel()
    assert sorted(store.inner.rows) == [T0 + 60 * i for i in range(2, 15)]
    # the first sweep ran at once (and failed), the next ones every ten minutes
    assert store.swept_before[0] == T0 - 3600.0
    assert len(store.swept_before) == 2
    got = await history.range(["gauge"], T0, T0 + 16 * 60)
    assert got.source == "store" and got.step == 60.0
    assert [p[0] for p in got.series["gauge"]] == [T0 + 60 * i for i in range(2, 16)]
    assert got.series["gauge"][3] == (T0 + 5 * 60, 5.0, 5.0)
    assert got.as_dict()["series"]["gauge"][0] == [T0 + 120, 2.0, 2.0]


async def test_bad_arguments_are_refused() -> None:
    with pytest.raises(engine.InvalidArgumentError):
        engine.MetricRing(capacity=0)
    with pytest.raises(engine.InvalidArgumentError):
        engine.MetricHistory(retention=1.0)
    with pytest.raises(engine.InvalidArgumentError):
        await engine.run_metric_history(engine.MetricHistory(), engine.Readings, interval=0)


async def test_a_store_that_does_not_answer_a_range_is_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FailingStore()
    store.hang = True
    history = engine.MetricHistory(store=store)
    with pytest.raises(engine.HistoryUnavailableError):
        await history.range(["gauge"], T0, T0 + 86400)
    assert trio.current_time() >= 30.0  # it waited its bound, no more
