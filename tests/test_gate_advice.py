"""Recommendations from a gate's recent use: the pure judgement, the saturated series it reads,
and the daemon's recommendations from its metric history (a real stack on PostgreSQL)."""

from __future__ import annotations

import time
from pathlib import Path

import trio

from engine import (
    AdaptiveStatistics,
    EngineConfig,
    GateUse,
    advise_gate,
    engine_readings,
    open_engine,
)
from engine.app import AppConfig, open_stack
from engine.app._recommendations import recommendations

FIXED = GateUse(name="db", setting="pool_size", size=4, capacity=4, saturated=0.8, seconds=3600.0)


def test_a_fixed_gate_saturated_most_of_the_hour_is_told_to_grow() -> None:
    assert (
        advise_gate(FIXED) == "the db gate was saturated 80% of the last hour: raise pool_size to 8"
    )


def test_an_adaptive_gate_held_low_by_slow_holds_blames_the_resource() -> None:
    slowed = AdaptiveStatistics(
        capacity=2, estimate=2.4, short_hold=0.09, long_hold=0.03, windows=50, raised=1, lowered=6
    )
    use = GateUse(
        name="db", setting="pool_size", size=8, capacity=2, saturated=0.9, seconds=1800.0,
        adaptive=slowed,
    )  # fmt: skip
    assert advise_gate(use) == (
        "the db gate was saturated 90% of the last 30 minutes, held to 2 of its 8 slots because "
        "its holds take 3.0x their usual time: the resource behind it is the bound, not pool_size"
    )
    # at its size, an adaptive gate is just too small
    at_size = GateUse(**{**_fields(use), "capacity": 8})
    assert advise_gate(at_size) == (
        "the db gate was saturated 90% of the last 30 minutes: raise pool_size to 16"
    )


def test_too_few_samples_or_a_gate_mostly_free_say_nothing() -> None:
    assert advise_gate(GateUse(**{**_fields(FIXED), "seconds": 300.0})) is None
    assert advise_gate(GateUse(**{**_fields(FIXED), "saturated": 0.3})) is None


def _fields(use: GateUse) -> dict[str, object]:
    return {name: getattr(use, name) for name in GateUse.__dataclass_fields__}


async def test_the_saturated_series_is_one_while_the_gate_is_full_with_waiters() -> None:
    async with open_engine(EngineConfig(gates={"g": 1})) as eng:
        gate = eng.gate("g")
        assert engine_readings(eng).gauges["gate.g.saturated"] == 0.0
        async with trio.open_nursery() as nursery:
            async with gate.acquire():
                assert engine_readings(eng).gauges["gate.g.saturated"] == 0.0

                async def wait() -> None:
                    async with gate.acquire():
                        pass

                nursery.start_soon(wait)
                await trio.testing.wait_all_tasks_blocked()
                assert engine_readings(eng).gauges["gate.g.saturated"] == 1.0
        assert engine_readings(eng).gauges["gate.g.saturated"] == 0.0


async def test_the_daemon_recommends_from_its_history(pg_url: str, tmp_path: Path) -> None:
    config = AppConfig(
        home=tmp_path / "home", database_url=pg_url, feed=False, dashboard=False,
        db_gate_adaptive=False,
    )  # fmt: skip
    with trio.fail_after(60):
        async with open_stack(config) as stack:
            assert stack.engine.statistics().adaptive == {}
            assert recommendations(stack) == []  # monitoring on, nothing sampled yet
            history = stack.history
            assert history is not None
            now = time.time()
            for i in range(1200):  # twenty minutes, saturated three seconds in four
                history.ring.record_nowait(now - 1200 + i, {"gate.db.saturated": float(i % 4 != 0)})
            assert recommendations(stack, now=now) == [
                "the db gate was saturated 75% of the last 20 minutes: raise pool_size to 8"
            ]
