"""The metric store contract: minutes stored and replaced, read by range and series, swept."""

from __future__ import annotations

import pytest
from contracts.backends import MetricsBackend

import engine

T0 = 1_800_000_000.0 - 1_800_000_000.0 % 60


def _minute(i: int, value: float, samples: int = 60) -> engine.MinuteRollup:
    return engine.MinuteRollup(
        T0 + 60 * i, {"gate.db.borrowed": (value, value + 1), "loop.lag_ms": (0.5, 2.0)}, samples
    )


async def test_minutes_are_stored_replaced_and_read_by_range_and_series(
    metrics: MetricsBackend,
) -> None:
    async with metrics.open_store() as store:
        await store.put_minutes([_minute(i, float(i)) for i in range(5)])
        await store.put_minutes([_minute(2, 20.0, samples=30)])
        got = await store.minutes(["gate.db.borrowed"], T0 + 60, T0 + 240)
        assert [m.minute for m in got] == [T0 + 60, T0 + 120, T0 + 180]
        assert [m.series for m in got] == [
            {"gate.db.borrowed": (1.0, 2.0)},
            {"gate.db.borrowed": (20.0, 21.0)},
            {"gate.db.borrowed": (3.0, 4.0)},
        ]
        assert got[1].samples == 30
        assert await store.minutes(["no.such"], T0, T0 + 600) == [
            engine.MinuteRollup(T0 + 60 * i, {}, 30 if i == 2 else 60) for i in range(5)
        ]
        await store.put_minutes([])


async def test_sweep_deletes_past_retention_and_past_the_row_cap(metrics: MetricsBackend) -> None:
    async with metrics.open_store() as store:
        await store.put_minutes([_minute(i, float(i)) for i in range(10)])
        assert await store.sweep(T0 + 120, max_rows=100) == 2
        assert await store.sweep(T0, max_rows=5) == 3
        left = await store.minutes(["loop.lag_ms"], T0, T0 + 3600)
        assert [m.minute for m in left] == [T0 + 60 * i for i in range(5, 10)]
        assert await store.sweep(T0, max_rows=5) == 0


@pytest.mark.parametrize("bad", [[""], ["has space"], ["x" * 121], [f"s{i}" for i in range(65)]])
async def test_bad_series_names_are_refused(metrics: MetricsBackend, bad: list[str]) -> None:
    async with metrics.open_store() as store:
        with pytest.raises(engine.InvalidArgumentError):
            await store.minutes(bad, T0, T0 + 60)
