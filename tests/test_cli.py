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
