"""The daemon's control channel: request validation, the unix socket server and the sync client."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio

import adapters
import engine
from adapters import (
    MAX_CONTROL_LINE,
    ControlProtocolError,
    ControlRequest,
    DaemonError,
    DaemonNotRunningError,
    decode_control_response,
    encode_control_error,
    encode_control_request,
    encode_control_result,
    parse_control_request,
)
from engine.app._daemon import DaemonLockedError, _display_url, _home_lock

DOC = Path(__file__).resolve().parent.parent / "docs" / "control.md"


def test_valid_requests_parse() -> None:
    r = parse_control_request(
        encode_control_request(7, "start", {"repo": "/x", "tags": ["a"], "idle_timeout": None})
    )
    assert r == ControlRequest(
        7, "start", adapters.StartArgs(repo="/x", tags=["a"], idle_timeout=None)
    )
    assert r.args.idle_timeout is None  # type: ignore[union-attr]
    started = parse_control_request(b'{"op": "start", "args": {"repo": "/x"}}').args
    assert isinstance(started, adapters.StartArgs) and started.idle_timeout is msgspec.UNSET
    assert parse_control_request(b'{"op": "ping"}') == ControlRequest(
        None, "ping", adapters.PingArgs()
    )
    cleanup = parse_control_request('{"id": "k", "op": "cleanup", "args": {"days": 1.5}}')
    assert cleanup.args == adapters.CleanupArgs(days=1.5) and cleanup.id == "k"
    assert set(adapters.CONTROL_OPERATIONS) == {
        "ping", "status", "dashboard_url", "start", "stop", "adopt", "list", "append", "tag", "untag",
        "info", "context", "worklog", "summary", "cleanup", "validate", "watch", "mcp_token", "monitoring",
        "remember", "recall", "decide", "rehydrate", "cache_lookup", "cache_store",
        "import_transcript", "hook",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "JSON object"),
        (b'{"op": "fly"}', "unknown op 'fly'"),
        (b'{"op": "stop"}', "stop: Object missing required field `session`"),
        (
            b'{"op": "stop", "args": {"session": 5}}',
            "Expected `str`, got `int` - at `args.session`",
        ),
        (b'{"op": "stop", "args": {"session": "s", "x": 1}}', "unknown field `x`"),
        (b'{"op": "tag", "args": {"session": "s", "tags": ["a", 1]}}', r"at `args.tags\[1\]`"),
        (b'{"op": "cleanup", "args": {"days": true}}', "Expected `float`, got `bool`"),
        (b'{"op": "cleanup", "args": {"days": NaN}}', "not JSON"),
        (b'{"op": "cleanup", "args": {"days": 1e999}}', "out of range"),
        (b'{"op": "cleanup", "args": {"days": -1}}', ">= 0"),
        (b'{"op": "worklog", "args": {"session": "s", "limit": 1.5}}', "Expected `int"),
        (b'{"op": "worklog", "args": {"session": "s", "limit": 0}}', ">= 1"),
        (b'{"op": "ping", "args": []}', "Expected `object`, got `array`"),
        (b'{"op": "ping", "id": [1]}', r"at `\$.id`"),
        (b'{"op": "ping", "id": true}', "got `bool`"),
        (b'{"op": "ping", "extra": 1}', "unknown field `extra`"),
        (b'{"op": "stop", "args": {"session": null}}', "got `null`"),
        (b'{"op": "stop", "args": {"session": ""}}', "length >= 1"),
    ],
)
def test_invalid_requests_are_refused(line: bytes, message: str) -> None:
    with pytest.raises(ControlProtocolError, match=message):
        parse_control_request(line)


def _sized(kind: str, n: int) -> Any:
    return {"str": "x" * n, "path": "/" + "p" * (n - 1), "item": ["t" * n], "list": ["t"] * n}[kind]


@pytest.mark.parametrize(
    ("op", "base", "key", "kind", "limit"),
    [
        ("start", {"repo": "/x"}, "name", "str", engine.NAME_MAX),
        ("start", {"repo": "/x"}, "tags", "item", engine.TAG_MAX),
        ("start", {"repo": "/x"}, "tags", "list", engine.LIST_MAX),
        ("start", {"repo": "/x"}, "related", "item", engine.NAME_MAX),
        ("start", {"repo": "/x"}, "description", "str", engine.DESCRIPTION_MAX),
        ("start", {}, "repo", "path", engine.PATH_MAX),
        ("start", {"repo": "/x"}, "files", "item", engine.PATH_MAX),
        ("append", {"session": "s"}, "text", "str", engine.NOTE_MAX),
        ("stop", {}, "session", "str", engine.NAME_MAX),
        ("context", {"session": "s"}, "role", "str", engine.NAME_MAX),
        ("list", {}, "states", "list", engine.LIST_MAX),
        ("list", {}, "tags", "item", engine.TAG_MAX),
        ("tag", {"session": "s"}, "tags", "item", engine.TAG_MAX),
    ],
)
def test_user_strings_have_size_limits(
    op: str, base: dict[str, Any], key: str, kind: str, limit: int
) -> None:
    at_limit = encode_control_request(1, op, {**base, key: _sized(kind, limit)})
    assert parse_control_request(at_limit).op == op
    with pytest.raises(ControlProtocolError, match="length <=") as info:
        parse_control_request(encode_control_request(1, op, {**base, key: _sized(kind, limit + 1)}))
    assert f"at `args.{key}" in str(info.value)


def test_too_long_requests_are_refused() -> None:
    with pytest.raises(ControlProtocolError, match="longer"):
        parse_control_request(b" " * (MAX_CONTROL_LINE + 1))


def test_responses_round_trip() -> None:
    assert decode_control_response(encode_control_result(3, {"a": [1]})) == (3, {"a": [1]})
    assert decode_control_response(encode_control_result(3, {"p": Path("/x")})) == (
        3,
        {"p": "/x"},
    )
    with pytest.raises(DaemonError) as info:
        decode_control_response(
            encode_control_error(3, engine.SessionNotFoundError("no session 'x'"))
        )
    assert info.value.type == "SessionNotFoundError" and info.value.message == "no session 'x'"
    group = ExceptionGroup("g", [engine.InvalidArgumentError("bad")])
    with pytest.raises(DaemonError, match="bad"):
        decode_control_response(encode_control_error(None, group))
    for bad in (b"{}", b"nope", b'{"ok": false}'):
        with pytest.raises(ControlProtocolError):
            decode_control_response(bad)


def test_the_schema_describes_every_operation() -> None:
    schema = adapters.control_schema()
    requests = schema["request"]["oneOf"]
    assert [r["properties"]["op"]["const"] for r in requests] == list(adapters.CONTROL_OPERATIONS)
    start = schema["request"]["$defs"]["StartArgs"]
    assert start["required"] == ["repo"] and start["additionalProperties"] is False
    assert start["properties"]["repo"]["maxLength"] == 4096
    assert schema["response"]["required"] == ["ok"]


def test_the_control_document_is_up_to_date() -> None:
    assert DOC.read_text() == adapters.control_doc(), (
        "docs/control.md is stale: regenerate it with `python -m adapters.control docs/control.md`"
    )


async def _handler(request: ControlRequest) -> Any:
    if isinstance(request.args, adapters.PingArgs):
        return {"pong": True}
    if isinstance(request.args, adapters.InfoArgs):
        raise engine.SessionNotFoundError(f"no session matches {request.args.session!r}")
    raise RuntimeError("unexpected")


async def test_server_and_client(tmp_path: Path) -> None:
    path = tmp_path / "scribe.sock"
    client = adapters.ControlClient(path, timeout=10)
    with pytest.raises(DaemonNotRunningError, match="no scribe daemon is running"):
        await trio.to_thread.run_sync(client.call, "ping")
    async with adapters.open_control_server(path, _handler) as server:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert await trio.to_thread.run_sync(client.call, "ping") == {"pong": True}
        with pytest.raises(DaemonError) as info:
            await trio.to_thread.run_sync(client.call, "info", {"session": "B-1"})
        assert info.value.type == "SessionNotFoundError"
        with pytest.raises(DaemonError) as info:
            await trio.to_thread.run_sync(client.call, "fly")
        assert info.value.type == "ControlProtocolError"
        with pytest.raises(DaemonError) as info:
            await trio.to_thread.run_sync(client.call, "status")
        assert info.value.type == "RuntimeError"

        def raw() -> list[Any]:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(path))
                s.sendall(b"garbage\n\n" + encode_control_request(1, "ping", {}))
                data = b""
                while data.count(b"\n") < 2:
                    data += s.recv(65536)
            return [json.loads(x) for x in data.splitlines()]

        first, second = await trio.to_thread.run_sync(raw)
        assert first["ok"] is False and first["error"]["type"] == "ControlProtocolError"
        assert second == {"id": 1, "ok": True, "result": {"pong": True}}
        with pytest.raises(adapters.DaemonAlreadyRunningError):
            async with adapters.open_control_server(path, _handler):
                pass
        stats = server.statistics()
        assert stats.requests == 6 and stats.errors == 4
    assert not path.exists()


async def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "scribe.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()  # bound, never listening: what a killed daemon leaves
    async with adapters.open_control_server(path, _handler):
        client = adapters.ControlClient(path)
        assert await trio.to_thread.run_sync(client.call, "ping") == {"pong": True}
    not_a_socket = tmp_path / "file.sock"
    not_a_socket.write_text("x")
    with pytest.raises(engine.InvalidArgumentError, match="not a socket"):
        async with adapters.open_control_server(not_a_socket, _handler):
            pass
    with pytest.raises(engine.InvalidArgumentError, match="longer than"):
        async with adapters.open_control_server(tmp_path / ("x" * 120), _handler):
            pass


def test_one_daemon_per_home(tmp_path: Path) -> None:
    with _home_lock(tmp_path):
        with pytest.raises(DaemonLockedError, match=f"pid {os.getpid()}"), _home_lock(tmp_path):
            pass
    with _home_lock(tmp_path):
        pass


def test_database_urls_are_shown_without_passwords(tmp_path: Path) -> None:
    assert _display_url("postgresql://u:secret@h/db", tmp_path) == "postgresql://u:***@h/db"
    assert (
        _display_url("host=h password=secret dbname=x", tmp_path) == "host=h password=*** dbname=x"
    )
    assert "embedded PostgreSQL" in _display_url(None, tmp_path)
