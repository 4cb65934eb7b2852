"""The control operations a coding agent's tools use: ``start`` with the agent's own session id,
``list`` by work tree and ``worklog`` since an entry, over the real control socket to a real scribe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from git_repos import git, make_repo, real
from scribe_support import open_stack

import adapters
import engine
from adapters import (
    ControlProtocolError,
    DaemonError,
    encode_control_request,
    parse_control_request,
)
from engine.app._control_handler import ControlHandler, DaemonInfo


@pytest.mark.parametrize(
    ("op", "field", "value", "message"),
    [
        ("start", "agent_session_id", "a" * (engine.NAME_MAX + 1), "length <= 200"),
        ("start", "agent_session_id", "", "length >= 1"),
        ("start", "agent_session_id", 5, "Expected `str | null`"),
        ("list", "repo", "/" + "p" * engine.PATH_MAX, "length <= 4096"),
        ("list", "repo", "", "length >= 1"),
        ("list", "repo", ["/x"], "Expected `str | null`"),
        ("worklog", "since", -1, ">= 0"),
        ("worklog", "since", 1.5, "Expected `int | null`"),
        ("worklog", "since", "3", "Expected `int | null`"),
        ("worklog", "since", engine.INT_MAX + 1, "<= 9223372036854775807"),
    ],
)
def test_bad_arguments_are_refused_by_name(op: str, field: str, value: Any, message: str) -> None:
    base = {"start": {"repo": "/x"}, "list": {}, "worklog": {"session": "s"}}[op]
    with pytest.raises(ControlProtocolError, match=message) as info:
        parse_control_request(encode_control_request(1, op, {**base, field: value}))
    assert f"at `args.{field}`" in str(info.value)


def test_good_arguments_parse() -> None:
    start = parse_control_request(
        encode_control_request(1, "start", {"repo": "/x", "agent_session_id": "a" * 200})
    ).args
    assert start == adapters.StartArgs(repo="/x", agent_session_id="a" * 200)
    listed = parse_control_request(encode_control_request(1, "list", {"repo": "/w"})).args
    assert isinstance(listed, adapters.ListArgs) and listed.repo == "/w"
    for since in (0, 7, engine.INT_MAX, None):
        worklog = parse_control_request(
            encode_control_request(1, "worklog", {"session": "s", "since": since})
        ).args
        assert isinstance(worklog, adapters.WorklogArgs) and worklog.since == since
    defaults = parse_control_request(b'{"op": "worklog", "args": {"session": "s"}}').args
    assert isinstance(defaults, adapters.WorklogArgs) and defaults.since is None
    assert adapters.StartArgs(repo="/x").agent_session_id is None
    assert adapters.ListArgs().repo is None
    schema = adapters.control_schema()["request"]["$defs"]
    assert schema["StartArgs"]["properties"]["agent_session_id"]["anyOf"][0]["maxLength"] == 200
    assert schema["ListArgs"]["properties"]["repo"]["anyOf"][0]["maxLength"] == engine.PATH_MAX
    assert schema["WorklogArgs"]["properties"]["since"]["anyOf"][0]["minimum"] == 0


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "work", files={"src/app.py": "x = 1\n"})
    git(root, "checkout", "-q", "-b", "feat/B-12-mcp")
    return root


class Client:
    """The daemon's sync client, called from a thread as a command would call it."""

    def __init__(self, path: Path) -> None:
        self._client = adapters.ControlClient(path, timeout=30)

    async def __call__(self, op: str, **args: Any) -> Any:
        return await trio.to_thread.run_sync(self._client.call, op, args)

    async def refused(self, op: str, **args: Any) -> DaemonError:
        with pytest.raises(DaemonError) as info:
            await self(op, **args)
        return info.value


@asynccontextmanager
async def _daemon(pg_url: str, tmp_path: Path) -> AsyncIterator[tuple[engine.Scribe, Client]]:
    path = tmp_path / "scribe.sock"
    async with open_stack(pg_url) as s:
        handler = ControlHandler(s.scribe, DaemonInfo())
        async with adapters.open_control_server(path, handler.handle):
            yield s.scribe, Client(path)


async def test_start_with_the_agent_session_id(
    fresh_pg_url: str, repo: Path, tmp_path: Path
) -> None:
    other = make_repo(tmp_path / "other", files={"y.py": "y\n"})
    async with _daemon(fresh_pg_url, tmp_path) as (scribe, call):
        first = await call("start", repo=str(repo), agent_session_id="claude-1f2e")
        assert first["agent_session_id"] == "claude-1f2e" and first["state"] == "active"
        again = await call("start", repo=str(repo / "src"), agent_session_id="claude-1f2e")
        assert again["id"] == first["id"] and again["created_at"] == first["created_at"]
        assert scribe.live() == [first["id"]]
        # Any call naming a session takes the agent's id.
        info = await call("info", session="claude-1f2e")
        assert info["session"]["id"] == first["id"]
        assert info["session"]["agent_session_id"] == "claude-1f2e"
        [listed] = (await call("list"))["sessions"]
        assert listed["agent_session_id"] == "claude-1f2e"

        elsewhere = await call.refused("start", repo=str(other), agent_session_id="claude-1f2e")
        assert elsewhere.type == "InvalidArgumentError"
        assert "already has live session" in elsewhere.message and first["id"] in elsewhere.message
        too_long = await call.refused("start", repo=str(repo), agent_session_id="a" * 201)
        assert (
            too_long.type == "ControlProtocolError" and "args.agent_session_id" in too_long.message
        )
        blank = await call.refused("start", repo=str(repo), agent_session_id="   ")
        assert blank.type == "InvalidArgumentError" and "agent session id" in blank.message
        assert [r["id"] for r in (await call("list"))["sessions"]] == [first["id"]]

        stopped = await call("stop", session="claude-1f2e")
        assert stopped["state"] == "completed"
        fresh = await call("start", repo=str(other), agent_session_id="claude-1f2e")
        assert fresh["id"] != first["id"] and fresh["repo_path"] == str(real(other))
        plain = await call("start", repo=str(repo))
        assert plain["agent_session_id"] is None


async def test_list_by_work_tree(fresh_pg_url: str, repo: Path, tmp_path: Path) -> None:
    other = make_repo(tmp_path / "other", files={"y.py": "y\n"})
    async with _daemon(fresh_pg_url, tmp_path) as (_, call):
        a = await call("start", repo=str(repo))
        b = await call("start", repo=str(other))

        async def ids(**args: Any) -> list[str]:
            return [r["id"] for r in (await call("list", **args))["sessions"]]

        assert await ids() == [a["id"], b["id"]]
        assert await ids(repo=str(repo)) == [a["id"]]
        assert await ids(repo=str(repo / "src")) == [a["id"]]
        assert await ids(repo=str(other), states=["active"]) == [b["id"]]
        assert await ids(repo=str(other), states=["completed"]) == []
        page = await call("list", repo=str(repo), limit=1)
        assert page == {"sessions": page["sessions"], "next": None}

        missing = await call.refused("list", repo=str(tmp_path / "does-not-exist"))
        assert missing.type == "NotARepositoryError" and "does-not-exist" in missing.message
        plain = tmp_path / "plain"
        plain.mkdir()
        assert (await call.refused("list", repo=str(plain))).type == "NotARepositoryError"
        relative = await call.refused("list", repo="work")
        assert relative.type == "InvalidArgumentError" and "absolute" in relative.message
        too_long = await call.refused("list", repo="/" + "p" * engine.PATH_MAX)
        assert too_long.type == "ControlProtocolError" and "args.repo" in too_long.message


async def test_worklog_since(fresh_pg_url: str, repo: Path, tmp_path: Path) -> None:
    async with _daemon(fresh_pg_url, tmp_path) as (_, call):
        rec = await call("start", repo=str(repo), agent_session_id="codex-9")
        for i in range(4):
            await call("append", session="codex-9", text=f"note {i}")
        whole = await call("worklog", session=rec["id"])
        last = whole["entries"][-1]["seq"]
        got = await call("worklog", session="codex-9", since=last - 2)
        assert [e["seq"] for e in got["entries"]] == [last - 1, last]
        assert got["session"]["id"] == rec["id"]
        newest = await call("worklog", session="codex-9", since=0, limit=1)
        assert [e["payload"]["text"] for e in newest["entries"]] == ["note 3"]
        md = await call("worklog", session="codex-9", since=last - 1, markdown=True)
        assert "note 3" in md["markdown"] and "note 2" not in md["markdown"]
        assert (await call("worklog", session="codex-9", since=last))["entries"] == []
        # paging back from the newest: each answer's smallest seq is the next one's `before`
        pages, before = [], None
        while True:
            args = {"limit": 2} | ({} if before is None else {"before": before})
            page = [e["seq"] for e in (await call("worklog", session="codex-9", **args))["entries"]]
            if not page:
                break
            pages.append(page)
            before = page[0]
        assert [seq for page in reversed(pages) for seq in page] == [
            e["seq"] for e in whole["entries"]
        ]
        assert all(len(page) == 2 for page in pages[:-1])
        negative_before = await call.refused("worklog", session="codex-9", before=-1)
        assert "args.before" in negative_before.message

        negative = await call.refused("worklog", session="codex-9", since=-1)
        assert negative.type == "ControlProtocolError" and "args.since" in negative.message
        text = await call.refused("worklog", session="codex-9", since="1")
        assert text.type == "ControlProtocolError"
        unknown = await call.refused("worklog", session="nobody-here", since=1)
        assert unknown.type == "SessionNotFoundError"
