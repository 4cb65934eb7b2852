"""The memory retention settings: defaults, a file and the environment, and what the daemon's
sweeper is given."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine
from engine.app import AppConfig, load_config


def test_messages_are_kept_forever_and_superseded_decisions_90_days_by_default(
    tmp_path: Path,
) -> None:
    retention = AppConfig(home=tmp_path).memory_retention()
    assert retention == engine.MemoryRetention(
        messages=None, superseded_decisions=90 * 86400.0, batch=1000
    )


def test_retention_from_a_file_and_the_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg" / "scribe" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("memory_retention_days = 30\nmemory_sweep_batch = 200\n")
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "HOME": str(tmp_path),
        "SCRIBE_MEMORY_SUPERSEDED_RETENTION_DAYS": "0",  # 0: forever
        "SCRIBE_MEMORY_SWEEP_INTERVAL": "60",
    }
    config = load_config(environ=env)
    assert config.memory_sweep_interval == 60.0
    assert config.memory_retention() == engine.MemoryRetention(
        messages=30 * 86400.0, superseded_decisions=None, batch=200
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"memory_retention_days": -1.0},
        {"memory_sweep_batch": 0},
        {"memory_sweep_interval": 0.0},
    ],
)
def test_bad_retention_settings_are_refused(tmp_path: Path, bad: dict[str, float]) -> None:
    with pytest.raises(engine.InvalidArgumentError):
        AppConfig(home=tmp_path, **bad)  # type: ignore[arg-type]
