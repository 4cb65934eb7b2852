"""The dashboard's JSON routes over the control operations, over real HTTP, on a whole daemon on the
real PostgreSQL: 401 without the sign-in cookie, 400 on too long or malformed parameters, 404 for
an unknown session, and the operations' answers with it."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from dashboard_support import RunningDaemon, http_get, open_daemon, sign_in
from git_repos import GIT_ENV, make_repo

import engine
from adapters.http._control_api import CONTROL_ROUTES


@pytest.fixture
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
async def daemon(fresh_pg_url: str, git_identity: None) -> AsyncIterator[RunningDaemon]:
    async with open_daemon(fresh_pg_url) as d:
        yield d


async def get(
    d: RunningDaemon, path: str, cookie: str | None, **params: Any
) -> tuple[int, dict[str, Any]]:
    query = urllib.parse.urlencode(params)
    url = f"{d.url.rstrip('/')}{path}" + (f"?{query}" if query else "")
    status, ctype, body = await trio.to_thread.run_sync(http_get, url, cookie)
    assert ctype == "application/json", (status, body)
    answer: dict[str, Any] = json.loads(body)
    return status, answer


async def test_each_route_needs_the_cookie_and_bounds_its_parameters(
    daemon: RunningDaemon,
) -> None:
    for path in CONTROL_ROUTES:
        status, body = await get(daemon, path, None, session="x", query="x")
        assert (status, body["error"]) == (401, "unauthorized"), path
    cookie = await trio.to_thread.run_sync(sign_in, daemon.login_url)
    too_long: list[tuple[str, dict[str, Any], str]] = [
        ("/summary.json", {"session": "s" * (engine.NAME_MAX + 1)}, "session is 201 characters"),
        ("/context.json", {"session": "s", "role": "r" * (engine.NAME_MAX + 1)}, "role is 201"),
        ("/recall.json", {"query": "q" * (engine.QUERY_MAX + 1)}, "query is 4097 characters"),
        ("/recall.json", {"query": "q", "k": engine.RECALL_MAX + 1}, "k must be an integer from 0"),
        ("/rehydrate.json", {"query": "q", "budget": engine.REHYDRATE_BUDGET_MAX + 1}, "budget"),
        ("/sessions.json", {"tag": "t" * (engine.TAG_MAX + 1)}, "tag is 101 characters"),
        ("/sessions.json", {"tag": ",".join(["t"] * (engine.LIST_MAX + 1))}, "101 items"),
        ("/sessions.json", {"limit": "ten"}, "limit must be an integer"),
        ("/worklog.json", {"session": "s", "since": "-1"}, "since must be an integer"),
        ("/worklog.json", {"session": "s", "before": "x"}, "before must be an integer"),
        ("/sessions.json", {"colour": "red"}, "unknown parameter 'colour'"),
        ("/summary.json", {"session": ""}, "session must not be empty"),
    ]
    for path, params, message in too_long:
        status, body = await get(daemon, path, cookie, **params)
        assert (status, body["error"]) == (400, "bad_request"), (path, params, body)
        assert message in body["message"], (path, body)
    # The operations' own checks answer 400 too: a kind recall does not know, a relative repo,
    # no query at all, a k of 0.
    for path, params in [
        ("/recall.json", {"query": "q", "kind": "poems"}),
        ("/sessions.json", {"repo": "relative/path"}),
        ("/rehydrate.json", {}),
        ("/recall.json", {"query": "q", "k": 0}),
    ]:
        status, body = await get(daemon, path, cookie, **params)
        assert (status, body["error"]) == (400, "bad_request"), (path, body)
    url = daemon.url + "summary.json?session=a&session=b"
    status, _, raw = await trio.to_thread.run_sync(http_get, url, cookie)
    assert status == 400 and "more than once" in json.loads(raw)["message"]
    status, body = await get(daemon, "/summary.json", cookie, session="no-such-session")
    assert (status, body["error"]) == (404, "not_found")


async def test_the_routes_answer_what_the_control_operations_do(
    daemon: RunningDaemon, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "shop", files={"app.py": "a = 1\n"})
    other = make_repo(tmp_path / "other", files={"b.py": "b = 1\n"})
    started = await daemon.call(
        "start", repo=str(repo), name="payments", tags=["billing"], idle_timeout=None
    )
    await daemon.call("start", repo=str(other), name="docs", idle_timeout=None)
    sid = started["id"]
    await daemon.call("append", session=sid, text="the refund path needs a retry")
    await daemon.call("remember", text="the staging database is called nightingale")
    cookie = await trio.to_thread.run_sync(sign_in, daemon.login_url)

    status, listed = await get(daemon, "/sessions.json", cookie)
    assert status == 200 and {s["name"] for s in listed["sessions"]} == {"payments", "docs"}
    status, tagged = await get(daemon, "/sessions.json", cookie, tag="billing")
    assert status == 200 and [s["id"] for s in tagged["sessions"]] == [sid]
    assert tagged["sessions"][0]["repo_path"] == str(repo.resolve())
    status, here = await get(daemon, "/sessions.json", cookie, repo=str(other.resolve()))
    assert [s["name"] for s in here["sessions"]] == ["docs"]
    status, page = await get(daemon, "/sessions.json", cookie, limit=1, state="active")
    assert status == 200 and len(page["sessions"]) == 1 and page["next"] is not None

    status, worklog = await get(daemon, "/worklog.json", cookie, session=sid)
    assert status == 200 and worklog["session"]["id"] == sid
    notes = [e["payload"]["text"] for e in worklog["entries"] if e["kind"] == "note"]
    assert notes == ["the refund path needs a retry"]
    last = worklog["entries"][-1]["seq"]
    status, after = await get(daemon, "/worklog.json", cookie, session=sid, since=last)
    assert status == 200 and after["entries"] == []
    status, earlier = await get(daemon, "/worklog.json", cookie, session=sid, before=last, limit=1)
    assert status == 200 and [e["seq"] for e in earlier["entries"]] == [
        e["seq"] for e in worklog["entries"][-2:-1]
    ]

    status, summary = await get(daemon, "/summary.json", cookie, session=sid)
    assert status == 200 and summary["session"]["name"] == "payments" and "summary" in summary
    status, ctx = await get(daemon, "/context.json", cookie, session=sid, role="planner")
    assert status == 200 and ctx["role"] == "planner" and ctx["session_id"] == sid
    assert "branch" in ctx["sources"]

    status, found = await get(daemon, "/recall.json", cookie, query="staging database", k=5)
    assert status == 200
    assert found["hits"][0]["text"] == "the staging database is called nightingale"
    status, bundle = await get(daemon, "/rehydrate.json", cookie, query="nightingale", budget=500)
    assert status == 200 and bundle["token_budget"] == 500
    cited = {item["citation"]: item["text"] for item in bundle["items"]}
    assert cited["messages:1"] == "user: the staging database is called nightingale"
