"""Agent hooks through a real ``scribe serve`` daemon's control socket, on a real git repository and
the real embedded PostgreSQL: each Claude Code event with a payload shaped as Claude Code sends it
(https://code.claude.com/docs/en/hooks), a resume continuing the session, the next session briefed
with the decision the last one recorded, a directory outside any work tree, oversized and
malformed input answered without a crash, and ``<private>`` text and secrets absent from every
table, from the live feed (a real websocket client) and from the log file."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import trio
from daemon_support import ControlDaemon, wait_for
from git_repos import git, make_repo
from pg_support import create_database, drop_database
from transcript_support import assistant, user, write_lines

import adapters
import engine

PRIVATE = "<private>the vault combination is 31-07-44</private>"
KEY = "ghp_" + "Zq3vB8nR2kT5wY1xC4mJ7pL0sD6fH9gA2eU5"
LEAKS = ("31-07-44", "vault combination", KEY, KEY[4:20])


class Daemon(ControlDaemon):
    """The daemon (feed on, debug log), and its hook operation."""

    def __init__(self, home: Path, db_url: str, cwd: Path) -> None:
        super().__init__(home, db_url, cwd, env={"SCRIBE_LOG_LEVEL": "debug"})

    def hook(self, **payload: Any) -> Any:
        return self.client.call("hook", {"agent": "claude-code", "payload": payload})


def event(name: str, agent: str, cwd: Path, **fields: Any) -> dict[str, Any]:
    """A hook input as Claude Code writes it on the hook's standard input."""
    project = str(cwd).replace("/", "-")
    return {
        "session_id": agent,
        "transcript_path": f"/home/dev/.claude/projects/{project}/{agent}.jsonl",
        "cwd": str(cwd),
        "permission_mode": "default",
        "hook_event_name": name,
        **fields,
    }


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("shop") / "work", files={"app.py": "a = 1\n"})
    git(root, "checkout", "-q", "-b", "feat/B-12-hooks")
    return root


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, pg_url: str, repo: Path) -> Iterator[Daemon]:
    url = create_database(pg_url)
    d = Daemon(tmp_path_factory.mktemp("home"), url, repo)
    try:
        yield d
    finally:
        d.close()
        drop_database(url)


def _live(d: Daemon, agent: str) -> dict[str, Any]:
    found = [s for s in d.call("list", repo=None)["sessions"] if s["agent_session_id"] == agent]
    assert len(found) == 1, found
    return found[0]


def _tools(d: Daemon, sid: str) -> list[dict[str, Any]]:
    entries = d.call("worklog", session=sid)["entries"]
    return [e["payload"] for e in entries if e["kind"] == "tool"]


def test_a_session_lives_from_start_to_end_and_briefs_the_next(daemon: Daemon, repo: Path) -> None:
    first = str(uuid.uuid4())
    got = daemon.hook(**event("SessionStart", first, repo, source="startup"))
    assert got["additional_context"].startswith(f"Scribe briefing (repository {repo}, branch ")
    session = _live(daemon, first)
    assert session["state"] == "active" and session["repo_path"] == str(repo)
    again = daemon.hook(**event("SessionStart", first, repo, source="resume"))
    assert again["additional_context"] and _live(daemon, first)["id"] == session["id"]
    compacted = daemon.hook(**event("SessionStart", first, repo / ".", source="compact"))
    assert compacted["additional_context"] and _live(daemon, first)["id"] == session["id"]

    answer = daemon.hook(
        **event("UserPromptSubmit", first, repo, prompt="make the heron importer retry")
    )
    assert answer == {"additional_context": None}
    edit = daemon.hook(
        **event(
            "PostToolUse",
            first,
            repo,
            tool_name="Edit",
            tool_input={
                "file_path": str(repo / "app.py"),
                "old_string": "a = 1",
                "new_string": "a = 2",
            },
            tool_response={"filePath": str(repo / "app.py"), "success": True},
        )
    )
    assert edit == {"additional_context": None}
    daemon.hook(
        **event(
            "PostToolUse",
            first,
            repo,
            tool_name="Bash",
            tool_input={"command": "pytest -q tests/", "description": "Run the tests"},
            tool_response={"stdout": "1 failed\n" * 20_000, "stderr": "", "interrupted": False},
        )
    )
    tools = wait_for(
        lambda: len(_tools(daemon, session["id"])) == 2 and _tools(daemon, session["id"])
    )
    assert [(t["tool"], t["paths"], t["command"]) for t in tools] == [
        ("Edit", ["app.py"], None),
        ("Bash", [], "pytest -q tests/"),
    ]
    assert len(tools[1]["result"]) <= 2000
    markdown = daemon.call("worklog", session=session["id"], markdown=True)["markdown"]
    assert "**Tool** `Edit` by claude-code `app.py`" in markdown
    said = wait_for(
        lambda: daemon.call("recall", query="heron importer", repo=str(repo), kind="messages")[
            "hits"
        ]
    )
    assert said[0]["text"] == "make the heron importer retry" and said[0]["role"] == "user"
    assert said[0]["session_id"] == session["id"]

    daemon.call(
        "decide",
        text="the heron importer retries with jittered backoff",
        session=session["id"],
    )
    for name in ("PreCompact", "Stop"):
        assert daemon.hook(**event(name, first, repo, trigger="manual")) == {
            "additional_context": None
        }
    assert daemon.hook(**event("SessionEnd", first, repo, reason="exit")) == {
        "additional_context": None
    }
    wait_for(lambda: daemon.call("info", session=session["id"])["session"]["state"] == "completed")
    summary = wait_for(lambda: daemon.call("summary", session=session["id"])["summary"])
    assert summary["session_id"] == session["id"]

    second = str(uuid.uuid4())
    brief = daemon.hook(**event("SessionStart", second, repo, source="startup"))
    text = brief["additional_context"]
    assert "the heron importer retries with jittered backoff" in text
    assert f"Last session ({session['id']})" in text
    assert len(text) / 4 <= 1500 and _live(daemon, second)["id"] != session["id"]
    daemon.hook(**event("SessionEnd", second, repo, reason="clear"))


def test_a_directory_outside_a_work_tree(daemon: Daemon, tmp_path: Path) -> None:
    agent = str(uuid.uuid4())
    got = daemon.hook(**event("SessionStart", agent, tmp_path, source="startup"))
    assert got["additional_context"].startswith("Scribe briefing (no repository).")
    daemon.hook(**event("UserPromptSubmit", agent, tmp_path, prompt="outside the pelican tree"))
    daemon.hook(**event("SessionEnd", agent, tmp_path, reason="exit"))
    hits = wait_for(
        lambda: daemon.call("recall", query="outside the pelican tree", kind="messages")["hits"]
    )
    assert hits[0]["session_id"] == "default"
    assert not [s for s in daemon.call("list")["sessions"] if s["agent_session_id"] == agent]


def _raw(home: Path, line: bytes) -> bytes:
    """What the daemon answers a raw line (it may close the connection before reading it all)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(str(home / "scribe.sock"))
        got = b""
        try:
            s.sendall(line)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while not got.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
        return got


def test_oversized_and_malformed_input_is_refused_and_the_daemon_goes_on(
    daemon: Daemon, repo: Path
) -> None:
    huge = {"op": "hook", "args": {"agent": "claude-code", "payload": {"x": "y" * (2 << 20)}}}
    answer = _raw(daemon.home, json.dumps(huge).encode() + b"\n")
    assert b"longer than" in answer or answer == b""
    for payload, message in [
        ({"hook_event_name": "SessionStart", "cwd": str(repo)}, "agent session id"),
        ({"hook_event_name": "PostToolUse", "session_id": "a", "cwd": str(repo)}, "tool_name"),
        (
            {"hook_event_name": "UserPromptSubmit", "session_id": "a", "cwd": "x", "prompt": "p"},
            "absolute",
        ),
        ({"hook_event_name": "SessionStart", "session_id": "a\x00b", "cwd": "/"}, "session id"),
    ]:
        with pytest.raises(adapters.DaemonError, match=message):
            daemon.hook(**payload)
    with pytest.raises(adapters.DaemonError):
        daemon.client.call("hook", {"agent": "codex", "payload": {}})
    with pytest.raises(adapters.DaemonError):
        daemon.client.call(
            "hook", {"agent": "claude-code", "payload": dict.fromkeys(map(str, range(500)), 1)}
        )
    assert daemon.hook(hook_event_name="Notification", session_id="a", message="hi") == {
        "additional_context": None
    }
    assert daemon.hook(hook_event_name=["SessionStart"]) == {"additional_context": None}
    assert daemon.call("ping")["pong"] is True


def _all_rows(url: str) -> str:
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        ]
        assert {
            "sessions", "worklog_entries", "summaries", "memory_messages", "memory_decisions",
            "memory_context_facts",
        } <= set(tables)  # fmt: skip
        return "\n".join(
            f"{t}: {row}" for t in tables for row in conn.execute(f'SELECT t::text FROM "{t}" AS t')
        )


def test_private_text_and_secrets_are_kept_nowhere(daemon: Daemon, repo: Path) -> None:
    status = daemon.call("status")
    agent = str(uuid.uuid4())
    secret = f"{PRIVATE} token {KEY}"
    seen: list[str] = []

    async def scenario() -> str:
        async with adapters.open_feed_client(status["feed_url"], status["token"]) as feed:
            await feed.subscribe("sessions")
            start = await trio.to_thread.run_sync(
                lambda: daemon.hook(**event("SessionStart", agent, repo, source="startup"))
            )
            assert start["additional_context"]
            sid = (await trio.to_thread.run_sync(_live, daemon, agent))["id"]
            await feed.subscribe(f"worklog:{sid}")

            def act() -> None:
                daemon.call("append", session=sid, text=f"note: {secret}")
                daemon.call("remember", text=f"remembered {secret}", session=sid)
                daemon.call("remember", text=f"fact {secret}", kind="fact", repo=str(repo))
                daemon.call("decide", text=f"decided {KEY}", body=secret, session=sid)
                daemon.hook(**event("UserPromptSubmit", agent, repo, prompt=f"prompt {secret}"))
                daemon.hook(
                    **event(
                        "PostToolUse",
                        agent,
                        repo,
                        tool_name="Bash",
                        tool_input={"command": f"echo {KEY}", "description": PRIVATE},
                        tool_response={"stdout": secret, "stderr": "", "interrupted": False},
                    )
                )
                with pytest.raises(adapters.DaemonError):
                    daemon.call("stop", session=f"no such {secret}")

            await trio.to_thread.run_sync(act)
            with trio.fail_after(30):
                async for message in feed:
                    seen.append(repr(message))
                    if (
                        isinstance(message, adapters.FeedUpdate)
                        and message.data.get("kind") == "tool"
                    ):
                        break
            await trio.to_thread.run_sync(
                lambda: daemon.hook(**event("SessionEnd", agent, repo, reason="exit"))
            )
            return sid

    sid = trio.run(scenario)
    wait_for(
        lambda: (
            (daemon.call("summary", session=sid)["summary"] or {}).get("metadata", {}).get("final")
        )
    )
    feed_text = "\n".join(seen)
    assert "[private]" in feed_text and "[redacted:github-token]" in feed_text
    rows = _all_rows(daemon.url)
    log = (daemon.home / "logs" / "scribe.log").read_text()
    assert "[private]" in rows and "[redacted:github-token]" in rows
    assert "no such [private]" in log
    for leak in LEAKS:
        assert leak not in feed_text, leak
        assert leak not in rows, leak
        assert leak not in log, leak
    assert engine.PRIVATE_MARKER == "[private]"


def test_the_hook_command_prints_the_briefing_claude_code_reads(daemon: Daemon, repo: Path) -> None:
    agent = str(uuid.uuid4())
    start = event("SessionStart", agent, repo, source="startup")
    r = daemon.process.run("hook", "claude-code", stdin=json.dumps(start))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)["hookSpecificOutput"]
    assert out["hookEventName"] == "SessionStart"
    assert out["additionalContext"].startswith(f"Scribe briefing (repository {repo}")
    tool = event(
        "PostToolUse",
        agent,
        repo,
        tool_name="Write",
        tool_input={"file_path": str(repo / "notes.md"), "content": "# notes\n"},
        tool_response={"filePath": str(repo / "notes.md"), "success": True},
    )
    r = daemon.process.run("hook", "claude-code", stdin=json.dumps(tool))
    assert (r.returncode, r.stdout) == (0, "")
    sid = _live(daemon, agent)["id"]
    written = wait_for(lambda: _tools(daemon, sid))
    assert written[0]["tool"] == "Write" and written[0]["paths"] == ["notes.md"]
    end = event("SessionEnd", agent, repo, reason="logout")
    assert daemon.process.run("hook", "claude-code", stdin=json.dumps(end)).returncode == 0
    wait_for(lambda: daemon.call("info", session=sid)["session"]["state"] == "completed")


def test_stop_imports_the_transcript_into_the_session(
    daemon: Daemon, repo: Path, tmp_path: Path
) -> None:
    agent = str(uuid.uuid4())
    transcript = tmp_path / f"{agent}.jsonl"
    write_lines(
        transcript,
        user("u-1", None, f"the osprey cache keeps {PRIVATE} for an hour"),
        assistant("a-1", "u-1", [{"type": "text", "text": "the osprey cache is now hourly"}]),
    )
    fields = {"transcript_path": str(transcript)}
    daemon.hook(**event("SessionStart", agent, repo, source="startup") | fields)
    sid = _live(daemon, agent)["id"]
    daemon.hook(**event("Stop", agent, repo, stop_hook_active=False) | fields)
    hits = wait_for(
        lambda: daemon.call("recall", query="osprey cache", session=sid, kind="messages")["hits"]
    )
    texts = {h["text"] for h in hits}
    assert "the osprey cache is now hourly" in texts
    assert all("31-07-44" not in t for t in texts) and any("[private]" in t for t in texts)
    daemon.hook(**event("SessionEnd", agent, repo, reason="exit") | fields)
    wait_for(lambda: daemon.call("info", session=sid)["session"]["state"] == "completed")
