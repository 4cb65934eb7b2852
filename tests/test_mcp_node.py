"""A second, independent MCP client: Node's official SDK (``@modelcontextprotocol/sdk``,
tests/js/mcp_client.mjs) against a real daemon on a real PostgreSQL, over stdio (``scribe mcp``) and
over streamable HTTP (the daemon's ``/mcp``, bearer token required; a wrong token, a feed token, a
foreign Host or Origin refused)."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio
from daemon_support import SCRIBE, Daemon
from git_repos import make_repo
from test_mcp_stdio import CONTRACT

JS = Path(__file__).parent / "js"
CLIENT = JS / "mcp_client.mjs"
#: Seconds a whole Node scenario may take.
RUN_TIMEOUT = 120.0


def node() -> str:
    found = shutil.which("node")
    assert found is not None, "scripts/test.sh installs Node.js"
    sdk = JS / "node_modules" / "@modelcontextprotocol" / "sdk"
    assert sdk.is_dir(), "scripts/test.sh runs npm install in tests/js"
    return found


#: The transport arguments for ``scribe mcp`` on stdio, as an agent's configuration starts it.
STDIO = ["stdio", SCRIBE, "mcp", "--no-start"]


def http_args(url: str, headers: Mapping[str, str] | None = None) -> list[str]:
    return ["http", url, json.dumps(dict(headers or {}))]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def run_scenario(
    env: Mapping[str, str], transport: list[str], steps: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run the Node client to the end of ``steps``; its answers, the connection's first."""
    done = subprocess.run(
        [node(), str(CLIENT), json.dumps(steps), *transport],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert answers and answers[0]["op"] == "connect", (done.stdout, done.stderr)
    if "error" in answers[0]:
        assert done.returncode == 2 and len(answers) == 1, (done.stdout, done.stderr)
    else:
        assert done.returncode == 0, done.stderr
        assert [a["op"] for a in answers[1:]] == [s["op"] for s in steps], done.stdout
    return answers


def ok(answer: dict[str, Any]) -> dict[str, Any]:
    """The structured result of a tool call that must succeed."""
    assert "error" not in answer, answer
    assert answer["isError"] is False and answer["text"] and answer["text"][0], answer
    structured = answer["structured"]
    assert isinstance(structured, dict), answer
    return structured


def tool_error(answer: dict[str, Any]) -> str:
    """The message of a tool call that must fail as a tool error (not a protocol error)."""
    assert "error" not in answer, answer
    assert answer["isError"] is True and answer["structured"] is None, answer
    return str(answer["text"][0])


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "work", files={"app.py": "a = 1\n"})


class Served(Daemon):
    """A daemon that keeps what it printed once ready (its feed token among it)."""

    banner = ""

    def start(self, *extra: str) -> str:
        self.banner = super().start(*extra)
        return self.banner

    def feed_token(self) -> str:
        for line in self.banner.splitlines():
            if line.strip().startswith("feed token"):
                return line.split()[-1]
        raise AssertionError(self.banner)


@pytest.fixture
def daemon(tmp_path: Path, fresh_pg_url: str, repo: Path) -> Iterator[Served]:
    d = Served(tmp_path / "home", fresh_pg_url, repo)
    d.start("--no-session")
    try:
        yield d
    finally:
        d.kill()


def test_node_client_over_stdio(daemon: Daemon, repo: Path) -> None:
    start = {"op": "call", "name": "start_session",
             "arguments": {"repo": str(repo), "tags": ["node"], "agent_session_id": "node-1"}}  # fmt: skip
    first = run_scenario(daemon.env, STDIO, [{"op": "tools"}, start])
    connect, tools, started = first
    assert connect["server"]["name"] and connect["capabilities"]["tools"] is not None
    assert connect["capabilities"]["resources"]["subscribe"] is True
    assert [t["name"] for t in tools["tools"]] == CONTRACT
    for t in tools["tools"]:
        assert t["inputSchema"]["type"] == "object" and t["outputSchema"]["type"] == "object"
    session = ok(started)
    sid = session["id"]
    assert session["repo_path"] == str(repo) and session["agent_session_id"] == "node-1"

    # a second client process: the session is the daemon's, not the first client's
    answers = run_scenario(
        daemon.env,
        STDIO,
        [
            {"op": "call", "name": "add_note", "arguments": {"session": "node-1", "text": "from node \x1b[2J"}},
            {"op": "call", "name": "add_note", "arguments": {"session": sid, "text": "x" * 100_000}},
            {"op": "call", "name": "add_note", "arguments": {"session": "nope", "text": "a"}},
            {"op": "call", "name": "fly", "arguments": {}},
            {"op": "call", "name": "get_worklog", "arguments": {"session": sid[:8], "limit": 0}},
            {"op": "call", "name": "get_worklog", "arguments": {"session": sid}},
            {"op": "call", "name": "get_context", "arguments": {"session": sid, "role": "coder"}},
            {"op": "call", "name": "list_sessions", "arguments": {"tags": ["node"]}},
            {"op": "read", "uri": f"scribe://sessions/{sid}/worklog"},
            {"op": "read", "uri": "scribe://sessions/../../etc/passwd"},
            {"op": "templates"},
        ],
    )  # fmt: skip
    note, big, unknown, fly, bad_limit, worklog, context, listed, resource, escape, templates = (
        answers[1:]
    )
    assert ok(note)["session_id"] == sid and ok(note)["kind"] == "note"
    # bad calls are tool errors saying what is wrong, and the server goes on serving
    assert "text" in tool_error(big)
    assert "SessionNotFoundError" in tool_error(unknown)
    assert "unknown tool" in tool_error(fly)
    assert "limit" in tool_error(bad_limit)
    entries = ok(worklog)["entries"]
    assert [e["payload"]["text"] for e in entries if e["kind"] == "note"] == ["from node \x1b[2J"]
    assert all("\x1b" not in text for text in worklog["text"])  # the readable text is literal
    assert ok(context)["session_id"] == sid and ok(context)["sources"]
    assert [s["id"] for s in ok(listed)["sessions"]] == [sid]
    (content,) = resource["contents"]
    assert content["uri"] == f"scribe://sessions/{sid}/worklog"
    text = content["text"]
    assert sid in text and "from node" in text and "\x1b" not in text
    assert "error" in escape and "contents" not in escape
    uris = {t["uriTemplate"] for t in templates["templates"]}
    assert {"scribe://sessions/{id}/worklog", "scribe://sessions/{id}/summary"} <= uris


class Lines:
    """JSON lines from a running Node client."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""

    async def next(self) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some(65536)
            assert chunk, f"the client process ended; output so far: {self._buffer!r}"
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return dict(json.loads(line))


async def test_node_subscriber_sees_a_file_change(daemon: Daemon, repo: Path) -> None:
    sid = daemon.json("start", "--repo", str(repo))["id"]
    uri = f"scribe://sessions/{sid}/worklog"
    steps = [{"op": "subscribe", "uri": uri}, {"op": "updated", "uri": uri, "timeout": 60},
             {"op": "read", "uri": uri}]  # fmt: skip
    process = await trio.lowlevel.open_process(
        [node(), str(CLIENT), json.dumps(steps), *STDIO],
        env=dict(daemon.env),
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines = Lines(process.stdout)
        with trio.fail_after(RUN_TIMEOUT):
            assert "error" not in await lines.next()
            subscribed = await lines.next()
            assert subscribed == {"op": "subscribe", "uri": uri}
            updated: dict[str, Any] = {}

            async def change_until_updated() -> None:
                n = 0
                while True:  # the daemon's watch opens in the background: change until seen
                    n += 1
                    (repo / "app.py").write_text(f"a = {n}\n")
                    await trio.sleep(0.5)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(change_until_updated)
                updated = await lines.next()
                nursery.cancel_scope.cancel()
            assert updated == {"op": "updated", "uri": uri}
            read = await lines.next()
            assert read["op"] == "read" and "app.py" in read["contents"][0]["text"]
            assert await process.wait() == 0
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
            await process.wait()
            if process.stdout is not None:
                await process.stdout.aclose()


def raw_post(url: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
    """An initialize request over plain HTTP, with exactly ``headers`` (Host included)."""
    parts = urlsplit(url)
    body = json.dumps({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "0"}},
    }).encode()  # fmt: skip
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.putrequest("POST", parts.path, skip_host=True, skip_accept_encoding=True)
        for name, value in {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "Content-Length": str(len(body)),
            **headers,
        }.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_node_client_over_http_with_a_token(daemon: Daemon, repo: Path) -> None:
    grant = daemon.json("mcp-token")
    url, token = grant["url"], grant["token"]
    assert urlsplit(url).path == "/mcp"
    answers = run_scenario(
        daemon.env,
        http_args(url, bearer(token)),
        [
            {"op": "tools"},
            {"op": "call", "name": "start_session", "arguments": {"repo": str(repo)}},
            {"op": "call", "name": "list_sessions", "arguments": {}},
            {"op": "call", "name": "add_note", "arguments": {"session": "nope", "text": "a"}},
        ],
    )
    connect, tools, started, listed, unknown = answers
    assert "error" not in connect and connect["capabilities"]["tools"] is not None
    assert [t["name"] for t in tools["tools"]] == CONTRACT
    sid = ok(started)["id"]
    assert [s["id"] for s in ok(listed)["sessions"]] == [sid]
    assert "SessionNotFoundError" in tool_error(unknown)
    # the same daemon, seen from the command line
    assert [s["id"] for s in daemon.json("list")] == [sid]


def test_http_refuses_without_a_good_token_host_or_origin(daemon: Served) -> None:
    grant = daemon.json("mcp-token")
    url, token = grant["url"], grant["token"]
    host = urlsplit(url).netloc
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")  # a bad signature
    refusals = {
        "no token": ({}, 401),
        "a wrong token": (bearer(forged), 401),
        "not a token": (bearer("hello"), 401),
        "the feed token": (bearer(daemon.feed_token()), 401),
        "a foreign origin": ({**bearer(token), "Origin": "https://evil.example"}, 403),
    }
    for what, (headers, status) in refusals.items():
        (connect,) = run_scenario(daemon.env, http_args(url, headers), [{"op": "tools"}])
        assert connect["error"]["code"] == status, (what, connect)
        raw_status, raw_headers, body = raw_post(url, {"Host": host, **headers})
        assert raw_status == status, (what, body)
        assert json.loads(body)["error"] == "refused", body
        assert ("www-authenticate" in raw_headers) == (status == 401), raw_headers
    # a foreign Host (DNS rebinding), even with a good token (Node's fetch sends the URL's own Host
    # whatever the headers say, so only a raw request can send another)
    for bad_host in ("evil.example", f"evil.example:{urlsplit(url).port}"):
        raw_status, _, body = raw_post(url, {"Host": bad_host, **bearer(token)})
        assert raw_status == 403, body
    # and the good token still works after all of that
    raw_status, raw_headers, body = raw_post(url, {"Host": host, **bearer(token)})
    assert raw_status == 200, body
    assert raw_headers.get("mcp-session-id"), raw_headers
