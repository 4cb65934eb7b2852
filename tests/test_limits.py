"""Limits on user-supplied fields and bounded answers: refused at the edge with typed errors, lists
paged, the feed's sessions snapshot bounded, control connections capped and timed out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from feed_support import open_feed
from git_repos import git, make_repo
from scribe_support import open_stack

import adapters
import engine
from adapters import (
    MAX_CONTROL_LINE,
    ControlProtocolError,
    FeedProtocolError,
    encode_control_request,
    open_feed_client,
    parse_control_request,
)
from adapters.feed._protocol import Ping, decode_client_message
from engine._ports._worklog_records import check_note
from engine.app._control_handler import ControlHandler, DaemonInfo

MB = 1024 * 1024


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "work", files={"a.py": "a = 1\n"})
    git(root, "checkout", "-q", "-b", "feat/B-9-limits")
    return root


async def _call(handler: ControlHandler, op: str, args: dict[str, Any]) -> Any:
    """One request as the control socket hands it to the daemon: the line decoded, then answered."""
    return await handler.handle(parse_control_request(encode_control_request(1, op, args)))


async def test_huge_descriptions_are_refused_at_start_and_nothing_is_stored(
    fresh_pg_url: str, repo: Path
) -> None:
    async with open_stack(fresh_pg_url) as s:
        handler = ControlHandler(s.scribe, DaemonInfo())
        for _ in range(70):
            with pytest.raises(ControlProtocolError, match="request longer than"):
                await _call(handler, "start", {"repo": str(repo), "description": "d" * MB})
            with pytest.raises(ControlProtocolError, match=r"<= 4096 - at `args.description`"):
                await _call(handler, "start", {"repo": str(repo), "description": "d" * (MB // 2)})
            with pytest.raises(engine.FieldLimitError, match="description") as info:
                await s.scribe.start(repo, description="d" * MB)
            assert info.value.field == "description"
            assert info.value.limit == engine.DESCRIPTION_MAX
        assert await s.registry.query() == []
        assert s.scribe.live() == []
        assert (await _call(handler, "list", {})) == {"sessions": [], "next": None}


async def test_sessions_at_the_limits_list_in_bounded_pages(fresh_pg_url: str) -> None:
    async with open_stack(fresh_pg_url) as s:
        handler = ControlHandler(s.scribe, DaemonInfo())
        made = []
        for i in range(230):
            record = engine.SessionRecord(
                id=f"s{i:04d}",
                name="n" * engine.NAME_MAX,
                description="d" * engine.DESCRIPTION_MAX,
                tags=tuple(f"{j:0{engine.TAG_MAX}d}" for j in range(engine.LIST_MAX)),
                created_at=1_000_000.0 + i // 3,  # ties on created_at are ordered by id
            )
            made.append((await s.registry.register(record)).id)
        seen: list[str] = []
        after = None
        pages = 0
        while True:
            args: dict[str, Any] = {} if after is None else {"after": after}
            page = await _call(handler, "list", args)
            line = adapters.encode_control_result(1, page)
            assert len(line) < MAX_CONTROL_LINE
            assert len(page["sessions"]) <= engine.PAGE_MAX
            for r in page["sessions"]:
                assert len(r["description"]) == engine.DESCRIPTION_PREVIEW
                assert r["description_truncated"] is True
            seen += [r["id"] for r in page["sessions"]]
            pages += 1
            after = page["next"]
            if after is None:
                break
        assert seen == made
        assert pages >= 3  # 100 sessions per page at most, fewer when their tags fill the page
        small = await _call(handler, "list", {"limit": 7, "after": made[10]})
        assert [r["id"] for r in small["sessions"]] == made[11:18]
        assert small["next"] == made[17]
        info = await _call(handler, "info", {"session": made[0]})
        assert info["session"]["description"] == "d" * engine.DESCRIPTION_MAX
        with pytest.raises(ControlProtocolError, match=r"<= 100 - at `args.limit`"):
            await _call(handler, "list", {"limit": engine.PAGE_MAX + 1})
        with pytest.raises(engine.InvalidArgumentError, match="list from the start"):
            await _call(handler, "list", {"after": "gone"})


@pytest.mark.parametrize(
    "backlog", ["../../x", "a/b", "..", "B-1/../../etc", "-x", "B 1", "B-1.md"]
)
async def test_a_backlog_id_that_is_no_name_is_refused_at_start(
    fresh_pg_url: str, repo: Path, backlog: str
) -> None:
    with pytest.raises(ControlProtocolError, match=r"args\.backlog_id"):
        parse_control_request(
            encode_control_request(1, "start", {"repo": "/x", "backlog_id": backlog})
        )
    async with open_stack(fresh_pg_url) as s:
        with pytest.raises(engine.InvalidArgumentError, match="backlog id"):
            await s.scribe.start(repo, backlog_id=backlog)
        assert await s.registry.query() == []
        ok = await s.scribe.start(repo, backlog_id="jira_12-a")
        assert ok.backlog_id == "JIRA_12-A"


async def test_a_backlog_id_found_in_a_branch_that_is_no_name_is_left_out(
    fresh_pg_url: str, repo: Path
) -> None:
    cfg = engine.ScribeConfig(
        backlog_pattern=r"[^/]+$",
        watcher_options={"quiet": 0.01, "cap": 0.1, "reconcile_interval": None},
    )
    git(repo, "checkout", "-q", "-b", "feat/x.y")
    async with open_stack(fresh_pg_url, config=cfg) as s:
        record = await s.scribe.start(repo)
        assert record.backlog_id is None and record.state is engine.SessionState.ACTIVE


async def test_a_limit_past_what_a_store_holds_is_refused_clearly(
    fresh_pg_url: str, repo: Path
) -> None:
    for limit in (2**64, 2**63, engine.LIMIT_MAX + 1):
        with pytest.raises(ControlProtocolError, match=r"<= 10000 - at `args.limit`"):
            parse_control_request(
                encode_control_request(1, "worklog", {"session": "s", "limit": limit})
            )
    assert parse_control_request(
        encode_control_request(1, "worklog", {"session": "s", "limit": engine.LIMIT_MAX})
    )
    with pytest.raises(engine.FieldLimitError, match=str(engine.INT_MAX)):
        engine.check_limit(2**64)
    async with open_stack(fresh_pg_url) as s:
        record = await s.scribe.start(repo)
        with pytest.raises(engine.FieldLimitError, match="at most"):
            await s.scribe.worklog(record.id, limit=2**64)
        with pytest.raises(engine.FieldLimitError):
            await s.registry.query(limit=2**63)
        _, entries = await s.scribe.worklog(record.id, limit=engine.INT_MAX)
        assert [e.kind.value for e in entries] == ["session_start"]


def test_the_feed_decodes_no_oversize_client_message() -> None:
    ping = '{"type": "ping"}'
    at_limit = ping + " " * (engine.FEED_MESSAGE_MAX - len(ping))
    assert isinstance(decode_client_message(at_limit), Ping)
    with pytest.raises(FeedProtocolError) as info:
        decode_client_message(at_limit + " ")
    assert info.value.code == "message_too_large"
    assert str(engine.FEED_MESSAGE_MAX) in str(info.value)


async def test_the_feed_refuses_an_oversize_client_message(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_feed(tmp_path) as feed:
            async with open_feed_client(feed.server.url, feed.token()) as client:
                await client.send_raw('{"type": "ping", "id": 1}' + " " * engine.FEED_MESSAGE_MAX)
                with pytest.raises(adapters.FeedConnectionError) as info:
                    while True:
                        await client.receive()
                assert info.value.code == 1009
            async with open_feed_client(feed.server.url, feed.token()) as fine:
                await fine.send_raw('{"type": "ping", "id": 2}')
                while True:
                    message = await fine.receive()
                    if isinstance(message, adapters.FeedReply) and message.type == "pong":
                        break


def test_the_sessions_snapshot_is_bounded_and_says_so() -> None:
    hub = engine.FeedHub()  # at most 500 keys in a snapshot by default
    for i in range(600):
        info = {"id": f"s{i}", "name": f"n{i}", "state": "active", "description": "d" * MB}
        hub.publish_engine_event("session.state", info, session_id=f"s{i}", time=0.0)
    cid = hub.add_client()
    hub.subscribe(cid, "sessions")
    frames = []
    while (frame := hub.take(cid)) is not None:
        frames.append(json.loads(frame))
    snapshot = next(f for f in frames if f["type"] == "snapshot")
    assert snapshot["truncated"] is True
    assert [e["key"] for e in snapshot["events"]] == [f"s{i}" for i in range(100, 600)]
    for e in snapshot["events"]:
        assert len(e["data"]["description"]) == engine.DESCRIPTION_PREVIEW
        assert e["data"]["description_truncated"] is True
    assert sum(len(json.dumps(f)) for f in frames) < 1024 * 1024
    hub.subscribe(cid, "health")
    while (frame := hub.take(cid)) is not None:
        got = json.loads(frame)
        if got["type"] == "snapshot":
            assert got["truncated"] is False and got["events"] == []


async def _ping(handler_request: adapters.ControlRequest) -> Any:
    return {"pong": True}


def _error(line: bytes) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(line)
    assert answer["ok"] is False
    error: dict[str, Any] = answer["error"]
    return error


async def _read_to_end(stream: trio.SocketStream) -> bytes:
    data = b""
    while chunk := await stream.receive_some(65536):
        data += chunk
    return data


async def test_the_control_socket_refuses_connection_65(tmp_path: Path) -> None:
    path = tmp_path / "scribe.sock"
    with trio.fail_after(30):
        async with adapters.open_control_server(path, _ping) as server:
            held = []
            for _ in range(64):
                held.append(await trio.open_unix_socket(str(path)))
            while server.statistics().connections < 64:  # noqa: ASYNC110 - the server's accept loop
                await trio.sleep(0.001)
            extra = await trio.open_unix_socket(str(path))
            error = _error(await _read_to_end(extra))
            assert error["type"] == "ControlLimitError" and "64" in error["message"]
            await extra.aclose()
            assert server.statistics().refused == 1
            # The ones held are served; once one closes, a new connection is served too.
            await held[0].send_all(encode_control_request(1, "ping", {}))
            assert json.loads(await held[0].receive_some(65536))["result"] == {"pong": True}
            await held.pop(0).aclose()
            while server.statistics().connections > 63:  # noqa: ASYNC110
                await trio.sleep(0.001)
            client = adapters.ControlClient(path, timeout=10)
            assert await trio.to_thread.run_sync(client.call, "ping") == {"pong": True}
            for stream in held:
                await stream.aclose()
            assert server.max_connections == adapters.DEFAULT_CONTROL_CONNECTIONS == 64


async def test_the_control_socket_closes_an_idle_connection(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "scribe.sock"
    async with adapters.open_control_server(path, _ping) as server:
        # Virtual seconds (the clock jumps when all is idle); entered once the server listens, as
        # its start waits for a thread, which the clock does not wait for.
        with trio.fail_after(600):
            await _idle_connections_are_closed(path, server)


async def _idle_connections_are_closed(path: Path, server: adapters.ControlServer) -> None:
    # Requests reset the deadline: three 40 s pauses between requests are fine.
    busy = await trio.open_unix_socket(str(path))
    for i in range(3):
        await trio.sleep(40)
        await busy.send_all(encode_control_request(i, "ping", {}))
        assert json.loads(await busy.receive_some(65536))["id"] == i
    # Silence, or half a line, for the timeout closes the connection with a typed error.
    await busy.send_all(b'{"op": "pi')
    error = _error(await _read_to_end(busy))
    assert error["type"] == "ControlLimitError" and "60 s" in error["message"]
    idle = await trio.open_unix_socket(str(path))
    assert _error(await _read_to_end(idle))["type"] == "ControlLimitError"
    stats = server.statistics()
    assert stats.timed_out == 2 and stats.connections == 0 and stats.requests == 3
    for s in (busy, idle):
        await s.aclose()
    assert server.idle_timeout == adapters.DEFAULT_CONTROL_IDLE_TIMEOUT == 60.0


def test_limits_are_checked_against_bad_values() -> None:
    with pytest.raises(engine.FieldLimitError) as info:
        engine.check_length("name", "x" * 11, 10)
    assert (info.value.field, info.value.limit) == ("name", 10)
    assert engine.check_backlog_id(" B-1 ") == "B-1"
    assert engine.check_backlog_id("a" * engine.BACKLOG_ID_MAX)
    with pytest.raises(engine.FieldLimitError):
        engine.check_backlog_id("a" * (engine.BACKLOG_ID_MAX + 1))
    assert engine.preview("abc", 5) == ("abc", False)
    assert engine.preview("abcdef", 5) == ("abcd…", True)
    many = [f"t{i}" for i in range(engine.LIST_MAX + 1)]
    assert len(engine.SessionRecord(id="s", name="n", tags=many).tags) == len(many)  # readable
    assert check_note("n" * engine.NOTE_MAX)
    with pytest.raises(engine.FieldLimitError, match="note"):
        check_note("n" * (engine.NOTE_MAX + 1))


def test_memory_and_generation_texts_have_limits() -> None:
    role = engine.MessageRole.USER
    assert engine.NewMessage(role, "m" * engine.MEMORY_TEXT_MAX)
    with pytest.raises(engine.FieldLimitError, match="message content"):
        engine.NewMessage(role, "m" * (engine.MEMORY_TEXT_MAX + 1))
    with pytest.raises(engine.FieldLimitError, match="decision body"):
        engine.NewDecision("t", body="b" * (engine.MEMORY_TEXT_MAX + 1))
    with pytest.raises(engine.FieldLimitError, match="files"):
        engine.NewDecision("t", files=[f"f{i}" for i in range(engine.LIST_MAX + 1)])
    with pytest.raises(engine.FieldLimitError, match="query"):
        engine.SourceQuery("q" * (engine.QUERY_MAX + 1), None, None, 5)
    with pytest.raises(engine.FieldLimitError, match="limit"):
        engine.SourceQuery("q", None, None, 2**64)
    text = "p" * (engine.GENERATION_TEXT_MAX + 1)
    for prompt, response in ((text, "r"), ("p", text)):
        with pytest.raises(engine.FieldLimitError):
            engine.NewGeneration("k", prompt, "m", {}, "h", response, None)


async def test_a_session_gets_no_more_tags_than_the_limit(fresh_pg_url: str, repo: Path) -> None:
    many = [f"t{i}" for i in range(engine.LIST_MAX + 1)]
    async with open_stack(fresh_pg_url) as s:
        with pytest.raises(engine.FieldLimitError, match="tags"):
            await s.scribe.start(repo, tags=many)
        assert await s.registry.query() == []
        record = await s.scribe.start(repo, tags=many[:50])
        tagged = await s.scribe.tag(record.id, many[50:100])
        assert len(tagged.tags) == engine.LIST_MAX
        with pytest.raises(engine.FieldLimitError, match="the limit is 100"):
            await s.scribe.tag(record.id, many[100:])
        assert (await s.registry.get(record.id)).tags == tuple(many[:100])
