"""Daemons that share one database keep their metric minutes apart: each daemon's key
(:func:`history_key`) is its own, stays the same across restarts, and its minutes are not replaced
by another daemon's of the same minute."""

from __future__ import annotations

from pathlib import Path

import adapters
import engine
from engine.app import AppConfig
from engine.app._cluster_settings import history_key


def test_each_home_and_name_has_its_own_stable_key(tmp_path: Path) -> None:
    a = AppConfig(home=tmp_path / "a")
    assert history_key(a) == history_key(AppConfig(home=tmp_path / "a"))  # a restart: the same
    assert history_key(a) != history_key(AppConfig(home=tmp_path / "b"))
    named = history_key(AppConfig(home=tmp_path / "a", daemon_name="laptop"))
    assert named.startswith("laptop:") and named != history_key(a)
    assert len(history_key(AppConfig(home=tmp_path / "a", daemon_name="x" * 200))) <= 200


async def test_two_daemons_minutes_of_the_same_minute_are_both_kept(fresh_pg_url: str) -> None:
    minute = 1_780_000_020.0
    async with adapters.open_database(fresh_pg_url, pool_size=1) as db:
        mine = adapters.PostgresMetricStore(db, daemon="alpha:1")
        theirs = adapters.PostgresMetricStore(db, daemon="beta:2")
        await mine.put_minutes([engine.MinuteRollup(minute, {"gate.db.use": (0.25, 1.0)}, 60)])
        await theirs.put_minutes([engine.MinuteRollup(minute, {"gate.db.use": (0.75, 1.0)}, 60)])
        [got_mine] = await mine.minutes(["gate.db.use"], minute - 60, minute + 60)
        [got_theirs] = await theirs.minutes(["gate.db.use"], minute - 60, minute + 60)
    assert got_mine.series["gate.db.use"] == (0.25, 1.0)
    assert got_theirs.series["gate.db.use"] == (0.75, 1.0)
