"""``scribe mcp`` on stdio, driven by the official Python MCP client against a real daemon on a real
PostgreSQL: every tool with good and bad input, several clients at once, a daemon restarted under a
client, no daemon at all, resource updates from a real work tree."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from daemon_support import SCRIBE, Daemon, wait_for
from git_repos import make_repo
from mcp import Client
from mcp.server.subscriptions import ResourceUpdated
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_support import call, first_listened_update, open_client, refused, server_parameters

CONTRACT = [
    "list_sessions", "start_session", "end_session", "add_note", "record_decision",
    "get_context", "get_worklog", "get_summary", "remember", "recall", "rehydrate",
    "cache_lookup", "cache_store",
]  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "work", files={"app.py": "a = 1\n"})


@pytest.fixture
def daemon(tmp_path: Path, fresh_pg_url: str, repo: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "home", fresh_pg_url, repo)
    d.start("--no-session")
    try:
        yield d
    finally:
        d.kill()


async def test_the_tools_are_the_contract_with_schemas(daemon: Daemon) -> None:
    async with open_client(daemon.env) as s:
        tools = (await s.list_tools()).tools
    assert [t.name for t in tools] == CONTRACT
    for t in tools:
        assert t.input_schema["type"] == "object" and t.description
        assert t.output_schema is not None and t.output_schema["type"] == "object"
        for name, prop in t.input_schema.get("properties", {}).items():
            # every string and list has a size limit
            kinds = [prop, *prop.get("anyOf", [])]
            for k in kinds:
                if k.get("type") == "string":
                    assert "maxLength" in k or "enum" in k, (t.name, name)
                if k.get("type") == "array":
                    assert "maxItems" in k, (t.name, name)


async def test_session_tools_good_and_bad_input(daemon: Daemon, repo: Path) -> None:
    async with open_client(daemon.env) as s:
        started = await call(
            s,
            "start_session",
            {"repo": str(repo), "tags": ["mcp"], "backlog_id": "B-7", "agent_session_id": "cc-1"},
        )
        sid = started["id"]
        assert started["state"] in ("starting", "active") and started["agent_session_id"] == "cc-1"
        # starting again with the agent's id gives the same live session
        assert (await call(s, "start_session", {"repo": str(repo), "agent_session_id": "cc-1"}))[
            "id"
        ] == sid
        page = await call(s, "list_sessions", {"tags": ["mcp"], "repo": str(repo)})
        assert [x["id"] for x in page["sessions"]] == [sid]
        assert (await call(s, "list_sessions", {"tags": ["other"]}))["sessions"] == []
        # the session argument takes the id, a prefix, the backlog id or the agent's id
        for ref in (sid, sid[:6], "B-7", "cc-1"):
            note = await call(s, "add_note", {"session": ref, "text": f"via {ref} \x1b[2J"})
            assert note["session_id"] == sid and note["kind"] == "note"
        worklog = await call(s, "get_worklog", {"session": "cc-1", "markdown": True})
        assert [e["kind"] for e in worklog["entries"]][-4:] == ["note"] * 4
        assert "\x1b" not in (await s.call_tool("get_worklog", {"session": sid})).content[0].text
        last = worklog["entries"][-1]["seq"]
        since = await call(s, "get_worklog", {"session": sid, "since": last - 2, "limit": 1})
        assert [e["seq"] for e in since["entries"]] == [last]
        context = await call(s, "get_context", {"session": sid, "role": "coder"})
        assert context["session_id"] == sid and context["sources"]
        summary = await call(s, "get_summary", {"session": sid})
        assert summary["session"]["id"] == sid

        # bad input: a tool error saying what is wrong; the server goes on serving
        assert "text" in await refused(s, "add_note", {"session": sid, "text": "x" * 100_000})
        assert "required" in await refused(s, "add_note", {"session": sid})
        assert "unknown field" in await refused(s, "add_note", {"session": sid, "text": "a", "x": 1})
        assert "SessionNotFoundError" in await refused(s, "add_note", {"session": "nope", "text": "a"})
        assert "limit" in await refused(s, "get_worklog", {"session": sid, "limit": 0})
        assert "since" in await refused(s, "get_worklog", {"session": sid, "since": -1})
        assert "agent_session_id" in await refused(
            s, "start_session", {"repo": str(repo), "agent_session_id": "a" * 10_000}
        )
        assert "git" in (await refused(s, "start_session", {"repo": "/"})).lower()
        assert "unknown tool" in await refused(s, "fly", {})
        with pytest.raises(MCPError):
            await s.read_resource("scribe://sessions/../../etc/passwd")

        ended = await call(s, "end_session", {"session": "cc-1"})
        assert ended["id"] == sid and ended["state"] in ("completed", "stopping", "cancelled")
        resource = await s.read_resource(f"scribe://sessions/{sid}/worklog")
        text = resource.contents[0].text  # type: ignore[union-attr]
        assert sid in text and "via B-7" in text and "\x1b" not in text


async def test_five_clients_share_one_daemon(daemon: Daemon, tmp_path: Path) -> None:
    repos = [make_repo(tmp_path / f"w{i}", files={"f.txt": f"{i}\n"}) for i in range(5)]
    ids: dict[int, str] = {}

    async def agent(i: int) -> None:
        async with open_client(daemon.env) as s:
            started = await call(s, "start_session", {"repo": str(repos[i]), "agent_session_id": f"a{i}"})
            ids[i] = started["id"]
            for n in range(5):
                await call(s, "add_note", {"session": f"a{i}", "text": f"note {n} of {i}"})
            entries = (await call(s, "get_worklog", {"session": f"a{i}"}))["entries"]
            assert [e["payload"]["text"] for e in entries if e["kind"] == "note"] == [
                f"note {n} of {i}" for n in range(5)
            ]

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(agent, i)
    assert {s["id"] for s in daemon.json("list")} == set(ids.values())


async def test_a_daemon_restarted_under_a_client(daemon: Daemon, repo: Path) -> None:
    async with open_client(daemon.env, "--no-start") as s:
        sid = (await call(s, "start_session", {"repo": str(repo)}))["id"]
        await trio.to_thread.run_sync(daemon.stop)
        message = await refused(s, "list_sessions", {})
        assert "not reachable" in message and "scribe serve" in message
        await trio.to_thread.run_sync(daemon.start, "--no-session")
        page = await call(s, "list_sessions", {})
        assert sid in [x["id"] for x in page["sessions"]]
        assert (await call(s, "start_session", {"repo": str(repo)}))["state"] in ("starting", "active")


async def test_without_a_daemon_one_is_started(tmp_path: Path, repo: Path) -> None:
    home = tmp_path / "fresh-home"
    env = {
        **os.environ,
        "SCRIBE_HOME": str(home),
        "SCRIBE_DASHBOARD_PORT": "0",
        "SCRIBE_FEED_PORT": "0",
    }
    env.pop("SCRIBE_DATABASE_URL", None)  # the embedded default
    try:
        async with open_client(env) as s:
            page = await call(s, "list_sessions", {})
            assert page["sessions"] == []
            assert (await call(s, "start_session", {"repo": str(repo)}))["repo_path"] == str(repo)
    finally:
        status = await trio.run_process(
            [SCRIBE, "status", "--json"], env=env, capture_stdout=True, capture_stderr=True, check=False
        )
        if status.returncode == 0:
            pid = json.loads(status.stdout)["pid"]
            os.kill(pid, signal.SIGTERM)
            await trio.to_thread.run_sync(
                functools.partial(wait_for, lambda: not (home / "scribe.sock").exists(), 60)
            )
    assert status.returncode == 0, status.stderr.decode()


async def test_without_a_daemon_and_none_to_start_calls_fail_clearly(tmp_path: Path) -> None:
    env = {**os.environ, "SCRIBE_HOME": str(tmp_path / "h")}
    async with open_client(env, "--no-start") as s:
        message = await refused(s, "get_context", {"session": "x"})
        assert "not reachable" in message
        assert "not reachable" in await refused(s, "list_sessions", {})


async def test_a_file_change_reaches_a_subscriber(daemon: Daemon, repo: Path) -> None:
    updates: list[str] = []
    async with open_client(daemon.env, updates=updates) as s:
        sid = (await call(s, "start_session", {"repo": str(repo)}))["id"]
        uri = f"scribe://sessions/{sid}/worklog"
        with pytest.warns(MCPDeprecationWarning):
            await s.subscribe_resource(uri)
        with trio.fail_after(60):
            while uri not in updates:  # the watch is opened in the background: change until seen
                (repo / "app.py").write_text(f"a = {len(updates)}\n")
                await trio.sleep(0.5)
        text = (await s.read_resource(uri)).contents[0].text  # type: ignore[union-attr]
        assert "app.py" in text


async def test_a_client_of_the_2026_protocol_listens_for_updates(daemon: Daemon, repo: Path) -> None:
    params = server_parameters(daemon.env)
    async with Client(params) as client:
        assert client.protocol_version == "2026-07-28"
        started = await client.call_tool("start_session", {"repo": str(repo)})
        sid = started.structured_content["id"]  # type: ignore[index]
        uri = f"scribe://sessions/{sid}/worklog"
        event = await first_listened_update(client, uri, repo)
        assert event == ResourceUpdated(uri=uri)


async def test_stdout_carries_the_protocol_only(daemon: Daemon) -> None:
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "list_sessions", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "add_note", "arguments": {"session": "nope", "text": "x"}}},
    ]  # fmt: skip
    process = await trio.lowlevel.open_process(
        [SCRIBE, "mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=daemon.env,
    )
    assert process.stdin is not None and process.stdout is not None
    received = b""
    with trio.fail_after(60):
        await process.stdin.send_all("".join(json.dumps(m) + "\n" for m in requests).encode())
        while received.count(b"\n") < 3:
            chunk = await process.stdout.receive_some()
            assert chunk, received
            received += chunk
        await process.stdin.aclose()
        received += b"".join([chunk async for chunk in process.stdout])
        assert await process.wait() == 0
    answers = [json.loads(line) for line in received.decode().splitlines()]
    assert [a["id"] for a in answers] == [1, 2, 3]
    assert all(a["jsonrpc"] == "2.0" for a in answers)
    assert answers[1]["result"]["structuredContent"] == {"sessions": [], "next": None}
    assert answers[2]["result"]["isError"] is True


async def test_memory_tools_good_and_bad_input(daemon: Daemon, repo: Path) -> None:
    async with open_client(daemon.env) as s:
        first = (await call(s, "start_session", {"repo": str(repo)}))["id"]
        second = (await call(s, "start_session", {"repo": str(repo), "agent_session_id": "b"}))["id"]
        assert first != second
        kept = await call(
            s, "remember", {"text": "the deploy script needs VPN access", "session": first}
        )
        assert kept["kind"] == "message" and kept["session_id"] == first
        fact = await call(
            s, "remember", {"text": "pnpm, not npm", "kind": "fact", "repo": str(repo)}
        )
        assert fact["kind"] == "fact"
        # memory of the repository is found from its other session
        found = await call(s, "recall", {"query": "deploy VPN", "repo": str(repo), "k": 5})
        assert any("VPN" in (h.get("text") or h.get("content") or "") for h in found["hits"])
        old = await call(s, "record_decision", {"text": "use SQLite for tests", "session": first})
        new = await call(
            s,
            "record_decision",
            {"text": "use PostgreSQL for tests", "session": "b", "supersedes": old["id"]},
        )
        assert new["status"] == "open" and new["id"] != old["id"]
        decisions = await call(s, "recall", {"query": "tests", "kind": "decisions", "repo": str(repo)})
        assert [h["id"] for h in decisions["hits"]][:1] == [new["id"]]
        bundle = await call(
            s, "rehydrate", {"query": "deploy", "repo": str(repo), "budget": 300, "role": "coder"}
        )
        assert bundle["tokens"] <= bundle["token_budget"] == 300
        assert all(item.get("source") for item in bundle["items"])  # every item cites its source
        settings = {"temperature": 0.2}
        assert (await call(s, "cache_lookup", {"prompt": "p?", "model": "m", "settings": settings}))[
            "hit"
        ] is False
        stored = await call(
            s,
            "cache_store",
            {"prompt": "p?", "model": "m", "settings": settings, "response": "an answer"},
        )
        hit = await call(s, "cache_lookup", {"prompt": "p?", "model": "m", "settings": settings})
        assert hit["hit"] is True and hit["response"] == "an answer" and stored["key"]

        assert "text" in await refused(s, "remember", {"text": "x" * 1_000_000})
        assert "kind" in await refused(s, "remember", {"text": "a", "kind": "dream"})
        assert "k" in await refused(s, "recall", {"query": "a", "k": 0})
        assert "SessionNotFoundError" in await refused(
            s, "recall", {"query": "a", "session": "nobody"}
        )
        assert "settings" in await refused(
            s,
            "cache_store",
            {"prompt": "p", "model": "m", "settings": {"x": "y" * 100_000}, "response": "r"},
        )
        assert "MemoryNotFoundError" in await refused(
            s, "record_decision", {"text": "t", "supersedes": 10**9}
        )
        assert (await call(s, "recall", {"query": "pnpm", "kind": "facts", "repo": str(repo)}))[
            "hits"
        ]
