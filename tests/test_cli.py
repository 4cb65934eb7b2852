"""The `scribe` command line as a user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def _scribe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_demo_shows_admission_by_priority_a_crash_and_a_graceful_cancel() -> None:
    out = _scribe("demo", "--step", "0.02", env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    order_line = next(line for line in text.splitlines() if line.startswith("admission order"))
    order = order_line.split(":", 1)[1]
    positions = {who: order.index(who) for who in ("coder", "reviewer", "planner")}
    assert positions["coder"] < positions["reviewer"] < positions["planner"]
    assert "error=RuntimeError: tool" in text
    assert "stop requested: flushing the worklog" in text and "flushed" in text
    assert "sessions by state: {'failed': 1, 'cancelled': 3}" in text


def test_help_lists_every_command() -> None:
    out = _scribe("--help", env=dict(os.environ))
    assert out.returncode == 0
    for name in (
        "demo",
        "serve",
        "start",
        "stop",
        "list",
        "context",
        "rehydrate",
        "remember",
        "recall",
    ):
        assert f"    {name}" in out.stdout


def test_remember_and_recall_through_the_cli(pg_url: str, tmp_path: Path) -> None:
    from pg_support import create_database

    url = create_database(pg_url, "cli")
    env = dict(os.environ, SCRIBE_DATABASE_URL=url, SCRIBE_HOME=str(tmp_path))
    r = _scribe("remember", "--session", "s1", "the watcher is pull-driven", env=env)
    assert r.returncode == 0, r.stderr
    r = _scribe("remember", "--session", "s1", "--decision", "Keep PostgreSQL", env=env)
    assert r.returncode == 0, r.stderr
    r = _scribe("recall", "--session", "s1", "watcher", "--json", env=env)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    assert "pull-driven" in json.dumps(found)
    r = _scribe("rehydrate", "--session", "s1", "Keep PostgreSQL", "--budget", "100", env=env)
    assert r.returncode == 0, r.stderr
    assert "Keep PostgreSQL" in r.stdout


def test_unknown_command_is_refused() -> None:
    out = _scribe("frobnicate", env=dict(os.environ))
    assert out.returncode == 2
    assert "invalid choice" in out.stderr


def test_the_help_follows_the_command_table() -> None:
    from engine.app._cli import COMMANDS, build_parser

    out = _scribe("--help", env=dict(os.environ))
    listed = [name for name in COMMANDS if f"    {name}" in out.stdout]
    assert listed == list(COMMANDS)
    choices = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert list(choices) == list(COMMANDS)


def test_a_bad_configuration_file_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("colour = 'blue'\n")
    out = _scribe("list", "--config", str(config), env=dict(os.environ))
    assert out.returncode == 1
    assert "unknown key 'colour'" in out.stderr and str(config) in out.stderr
    env = dict(os.environ, SCRIBE_CONFIG=str(config), SCRIBE_HOME=str(tmp_path))
    out = _scribe("recall", "anything", env=env)
    assert out.returncode == 1 and "unknown key 'colour'" in out.stderr
    out = _scribe(
        "status",
        env=dict(
            os.environ, SCRIBE_HOME=str(tmp_path / "h"), SCRIBE_CONFIG=str(tmp_path / "none.toml")
        ),
    )
    assert out.returncode == 1 and "does not exist" in out.stderr


def test_no_daemon_is_said_plainly(tmp_path: Path) -> None:
    env = dict(os.environ, SCRIBE_HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    out = _scribe("list", env=env)
    assert out.returncode == 3 and "no scribe daemon" in out.stderr
