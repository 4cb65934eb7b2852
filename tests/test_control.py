"""The daemon's control channel: request validation, the unix socket server and the sync client."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
import trio

import adapters
import engine
from adapters.control._protocol import (
    MAX_LINE,
    ControlProtocolError,
    DaemonError,
    DaemonNotRunningError,
    Request,
    decode_response,
    encode_error,
    encode_request,
    encode_result,
    parse_request,
)
from engine.app._daemon import DaemonLockedError, _display_url, _home_lock


def test_valid_requests_parse() -> None:
    r = parse_request(
        encode_request(7, "start", {"repo": "/x", "tags": ["a"], "idle_timeout": None})
    )
    assert r == Request(7, "start", {"repo": "/x", "tags": ["a"], "idle_timeout": None})
    assert parse_request(b'{"op": "ping"}') == Request(None, "ping", {})
    assert parse_request('{"id": "k", "op": "cleanup", "args": {"days": 1.5}}').args == {
        "days": 1.5
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "JSON object"),
        (b'{"op": "fly"}', "unknown op"),
        (b'{"op": "stop"}', "'session' is required"),
        (b'{"op": "stop", "args": {"session": 5}}', "must be a str"),
        (b'{"op": "stop", "args": {"session": "s", "x": 1}}', "unknown arguments"),
        (b'{"op": "tag", "args": {"session": "s", "tags": ["a", 1]}}', "list of strings"),
        (b'{"op": "cleanup", "args": {"days": true}}', "finite number"),
        (b'{"op": "cleanup", "args": {"days": NaN}}', "finite number"),
        (b'{"op": "worklog", "args": {"session": "s", "limit": 1.5}}', "must be a int"),
        (b'{"op": "ping", "args": []}', "args must be"),
        (b'{"op": "ping", "id": [1]}', "id must be"),
        (b'{"op": "ping", "extra": 1}', "unknown request fields"),
        (b'{"op": "stop", "args": {"session": null}}', "must not be null"),
    ],
)
def test_invalid_requests_are_refused(line: bytes, message: str) -> None:
    with pytest.raises(ControlProtocolError, match=message):
        parse_request(line)


def test_too_long_requests_are_refused() -> None:
    with pytest.raises(ControlProtocolError, match="longer"):
        parse_request(b" " * (MAX_LINE + 1))


def test_responses_round_trip() -> None:
    assert decode_response(encode_result(3, {"a": [1]})) == (3, {"a": [1]})
    with pytest.raises(DaemonError) as info:
        decode_response(encode_error(3, engine.SessionNotFoundError("no session 'x'")))
    assert info.value.type == "SessionNotFoundError" and info.value.message == "no session 'x'"
    group = ExceptionGroup("g", [engine.InvalidArgumentError("bad")])
    with pytest.raises(DaemonError, match="bad"):
        decode_response(encode_error(None, group))
    for bad in (b"{}", b"nope", b'{"ok": false}'):
        with pytest.raises(ControlProtocolError):
            decode_response(bad)


async def _handler(request: Request) -> Any:
    if request.op == "ping":
        return {"pong": True}
    if request.op == "info":
        raise engine.SessionNotFoundError(f"no session matches {request.args['session']!r}")
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
                s.sendall(b"garbage\n\n" + encode_request(1, "ping", {}))
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
