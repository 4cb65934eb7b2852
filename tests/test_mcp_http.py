"""The daemon's ``/mcp`` endpoint (streamable HTTP) with the official Python client: a token from
``scribe mcp-token``, the tools, and a ``subscriptions/listen`` stream fed by a real work tree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from daemon_support import Daemon
from git_repos import make_repo
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.subscriptions import ResourceUpdated
from mcp_support import first_listened_update


@pytest.fixture
def daemon(tmp_path: Path, fresh_pg_url: str) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "home", fresh_pg_url, tmp_path)
    d.start("--no-session")
    try:
        yield d
    finally:
        d.kill()


async def test_tools_and_updates_over_http(daemon: Daemon, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "work", files={"app.py": "a = 1\n"})
    issued = daemon.json("mcp-token", "--days", "1", "--name", "container-agent")
    assert issued["url"].endswith("/mcp")
    headers = {"Authorization": f"Bearer {issued['token']}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(issued["url"], http_client=http)) as client,
    ):
        names = [t.name for t in (await client.list_tools()).tools]
        assert "start_session" in names and "get_worklog" in names
        started = await client.call_tool("start_session", {"repo": str(repo), "tags": ["http"]})
        assert not started.is_error
        sid = started.structured_content["id"]  # type: ignore[index]
        note = await client.call_tool("add_note", {"session": sid, "text": "over http"})
        assert not note.is_error
        bad = await client.call_tool("add_note", {"session": sid})
        assert bad.is_error and "required" in bad.content[0].text  # type: ignore[union-attr]
        uri = f"scribe://sessions/{sid}/worklog"
        event = await first_listened_update(client, uri, repo)
        assert event == ResourceUpdated(uri=uri)
        text = (await client.read_resource(uri)).contents[0].text  # type: ignore[union-attr]
        assert "over http" in text
    assert sid in {s["id"] for s in daemon.json("list", "--tag", "http")}
