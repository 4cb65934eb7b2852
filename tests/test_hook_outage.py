"""The hooks across a real database outage (the daemon's PostgreSQL stopped with ``pg_ctl stop -m
immediate``): every ``scribe hook claude-code`` still exits 0 with nothing that would disturb the
agent, and the tool call it was handed during the outage reaches the worklog once the database is
back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_support import ControlDaemon, wait_for
from git_repos import git, make_repo
from pg_support import start_test_server

import adapters


@pytest.fixture
def server(pg_tmp_path: Path) -> Iterator[adapters.EmbeddedServer]:
    srv = start_test_server(pg_tmp_path)
    try:
        srv.create_database("scribe")
        yield srv
    finally:
        srv.stop("fast")


def _event(name: str, agent: str, cwd: Path, **fields: Any) -> str:
    return json.dumps(
        {
            "session_id": agent,
            "transcript_path": str(cwd / ".no-transcript.jsonl"),
            "cwd": str(cwd),
            "hook_event_name": name,
            **fields,
        }
    )


def test_hooks_fail_open_while_the_database_is_down_and_lose_no_tool_call(
    server: adapters.EmbeddedServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "work", files={"app.py": "a = 1\n"})
    git(repo, "checkout", "-q", "-b", "feat/B-9-outage")
    daemon = ControlDaemon(tmp_path / "home", server.url("scribe"), repo)
    agent = str(uuid.uuid4())
    try:
        started = daemon.process.run(
            "hook", "claude-code", stdin=_event("SessionStart", agent, repo, source="startup")
        )
        assert started.returncode == 0 and "Scribe briefing" in started.stdout
        [session] = [
            s for s in daemon.call("list")["sessions"] if s["agent_session_id"] == agent
        ]
        server.stop("immediate")
        during = {
            "SessionStart": _event("SessionStart", agent, repo, source="resume"),
            "UserPromptSubmit": _event("UserPromptSubmit", agent, repo, prompt="add VAT"),
            "PostToolUse": _event(
                "PostToolUse",
                agent,
                repo,
                tool_name="Edit",
                tool_input={"file_path": str(repo / "app.py"), "old_string": "1", "new_string": "2"},
                tool_response={"filePath": str(repo / "app.py"), "success": True},
            ),
            "Stop": _event("Stop", agent, repo),
        }
        for name, payload in during.items():
            r = daemon.process.run("hook", "claude-code", stdin=payload)
            assert r.returncode == 0, (name, r.stderr)
            assert r.stderr == ""
            if r.stdout:  # at most a briefing, in the shape Claude Code reads
                assert name == "SessionStart"
                assert json.loads(r.stdout)["hookSpecificOutput"]["hookEventName"] == name
        server.start()

        def tool_entries() -> list[dict[str, Any]]:
            entries = daemon.call("worklog", session=session["id"])["entries"]
            return [e["payload"] for e in entries if e["kind"] == "tool"]

        [edit] = wait_for(tool_entries, timeout=60)
        assert edit["tool"] == "Edit" and edit["paths"] == ["app.py"]
    finally:
        daemon.close()
