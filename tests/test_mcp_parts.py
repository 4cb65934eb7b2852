"""The parts of the MCP server that need no daemon: resource URIs, tool schemas, error messages,
bearer tokens, and the control socket's watch stream and trio client (over a real unix socket)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import msgspec
import pytest
import trio
from mcp.shared.message import SessionMessage
from mcp_types import methods
from scribe_support import poll_until

import adapters
import engine
from adapters.mcp._errors import describe_failure, describe_invalid
from adapters.mcp._schema import object_schema
from adapters.mcp._stdio import _line
from adapters.mcp._tool_calls import wire_result
from adapters.mcp._tools import MCP_TOOLS
from adapters.mcp._uris import ResourceUri, parse_uri


def test_resource_uris_parse_and_refuse() -> None:
    assert parse_uri("scribe://sessions/abc123/worklog") == ResourceUri("abc123", "worklog")
    assert parse_uri("scribe://sessions/B-7/summary") == ResourceUri("B-7", "summary")
    assert str(ResourceUri("cc:1.x", "summary")) == "scribe://sessions/cc:1.x/summary"
    for bad in (
        "scribe://sessions/../x/worklog",
        "scribe://sessions/a/b/worklog",
        "scribe://sessions/a/notes",
        "scribe://sessions//worklog",
        "file:///etc/passwd",
        "scribe://sessions/" + "a" * (engine.NAME_MAX + 1) + "/worklog",
        "scribe://sessions/a%2f/worklog",
        "scribe://sessions/a\n/worklog",
    ):
        assert parse_uri(bad) is None, bad


def test_every_tool_has_object_schemas_and_real_hints() -> None:
    assert len({t.name for t in adapters.MCP_TOOLS}) == len(adapters.MCP_TOOLS) == 13
    for tool in adapters.MCP_TOOLS:
        assert tool.op in adapters.CONTROL_OPERATIONS, tool.name
        schema = object_schema(adapters.CONTROL_OPERATIONS[tool.op], tool.hints)
        assert schema["type"] == "object" and "$ref" not in schema
        assert set(tool.hints) <= set(schema["properties"]), tool.name
        for field, text in tool.hints.items():
            assert schema["properties"][field]["description"] == text
        assert object_schema(tool.output)["type"] == "object"


def test_the_document_is_current() -> None:
    doc = Path(__file__).resolve().parent.parent / "docs" / "mcp.md"
    assert doc.read_text() == adapters.mcp_doc(), (
        "docs/mcp.md is stale: regenerate it with `python -m adapters.mcp docs/mcp.md`"
    )


def test_the_context_text_is_a_line_per_source_and_literal() -> None:
    text = next(t for t in MCP_TOOLS if t.name == "get_context").text
    long = "x" * 5000
    answer = {
        "session_id": "s1",
        "role": "coder",
        "sources": {
            "branch": {"status": "ok", "value": {"branch": "main\x1b[2J", "head": long, "n": 3}},
            "log": {"status": "ok", "value": [{"subject": long}] * 7},
            "files": {"status": "ok", "value": {"a": [1], "b": {}, "c": 1, "d": 2, "e": 3, "f": 4}},
            "notes": {"status": "ok", "value": long},
            "summary": {"status": "timeout", "error": "took too long\x1b[0m"},
        },
    }
    lines = text(answer).splitlines()
    assert lines[0].startswith("Context of session s1 for the coder, 5 source(s)")
    assert lines[1:] == [
        "- branch: branch=main\\x1b[2J, head=" + "x" * 39 + "…, n=3",
        "- log: 7 item(s)",
        "- files: c=1, d=2, e=3, f=4, 2 more field(s)",
        "- notes: " + "x" * 39 + "…",
        "- summary: timeout: took too long\\x1b[0m",
    ]


def test_answers_go_out_as_the_sdk_would_write_them() -> None:
    result = {"content": [{"type": "text", "text": "é \u2028 \\"}], "structuredContent": {"x": 1.5}}
    for message in (
        types.JSONRPCResponse(jsonrpc="2.0", id=7, result=result),
        types.JSONRPCResponse(jsonrpc="2.0", id="a", result={"big": 2**70}),  # orjson refuses
        types.JSONRPCNotification(jsonrpc="2.0", method="notifications/x", params={"a": 1}),
    ):
        line = _line(message)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        sdk = message.model_dump_json(by_alias=True, exclude_unset=True)
        assert json.loads(line) == json.loads(sdk)


def test_the_one_pass_answer_is_the_sdks() -> None:
    text = types.TextContent(type="text", text="a \u2028 note")
    for result in (
        types.CallToolResult(content=[text], structured_content={"seq": 1, "x": [None, 1.5]}),
        types.CallToolResult(content=[text], is_error=True),
        types.CallToolResult(content=[text, text], structured_content={}),
        types.CallToolResult(content=[text], _meta={"k": "v"}),  # the SDK shapes these two
        types.CallToolResult(content=[types.ImageContent(type="image", data="AA==", mime_type="a/b")]),
    ):
        sdk = methods.serialize_server_result(
            "tools/call", "2025-11-25", result.model_dump(by_alias=True, mode="json", exclude_none=True)
        )
        assert wire_result(result, "2025-11-25") == sdk


async def test_plain_tool_calls_and_the_rest(tmp_path: Path) -> None:
    """Over the SDK's server: plain calls answered by the tools, the others as the SDK does."""
    async with (
        adapters.open_control_client(tmp_path / "no-daemon.sock", timeout=5) as backend,
        adapters.open_mcp_app(backend) as app,
        trio.open_nursery() as nursery,
    ):
        to_server, server_reads = anyio.create_memory_object_stream[Any](0)
        server_writes, from_server = anyio.create_memory_object_stream[Any](0)
        options = app.server.create_initialization_options()
        nursery.start_soon(app.server.run, server_reads, server_writes, options)

        async def rpc(method: str, params: dict[str, Any], rid: int | None = 1) -> dict[str, Any]:
            message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
            if rid is not None:
                message["id"] = rid
            with trio.fail_after(10):
                await to_server.send(SessionMessage(types.jsonrpc_message_adapter.validate_python(message)))
                if rid is None:
                    return {}
                answer = (await from_server.receive()).message.model_dump(by_alias=True)
            assert answer["id"] == rid
            return answer.get("result") or {"error": answer["error"]}

        note = {"name": "add_note", "arguments": {"session": "s1", "text": "a"}}
        early = await rpc("tools/call", note)
        assert early["error"]["code"] == types.INVALID_PARAMS  # not initialised yet
        hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        assert (await rpc("initialize", hello))["protocolVersion"] == "2025-11-25"
        await rpc("notifications/initialized", {}, rid=None)
        plain = await rpc("tools/call", note)
        assert plain["isError"] is True and "not reachable" in plain["content"][0]["text"]
        assert plain == await rpc("tools/call", {**note, "_meta": {"progressToken": 3}})
        assert plain == await rpc("tools/call", {**note, "requestState": "r"})  # the SDK's way
        assert (await rpc("tools/call", {"name": 5}))["error"]["code"] == types.INVALID_PARAMS
        bad = await rpc("tools/call", {"name": "add_note", "arguments": {"text": 1}})
        assert bad["isError"] is True and "add_note" in bad["content"][0]["text"]
        unknown = await rpc("tools/call", {"name": "nope\x1b"})
        assert "unknown tool 'nope\\x1b'" in unknown["content"][0]["text"]
        nursery.cancel_scope.cancel()
        for stream in (to_server, server_reads, server_writes, from_server):
            stream.close()


def test_failures_say_what_to_do() -> None:
    class Args(msgspec.Struct, forbid_unknown_fields=True):
        text: str

    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert({"text": 1}, Args)
    assert describe_invalid("add_note", caught.value) == (
        "add_note: bad arguments: Expected `str`, got `int` - at `text`. Correct them and call again."
    )
    down = describe_failure("recall", adapters.DaemonNotRunningError("nothing answers"))
    assert down is not None and "not reachable: nothing answers" in down and "reconnects" in down
    unknown = describe_failure(
        "add_note", adapters.DaemonError("SessionNotFoundError", "no session matches 'x\x1b[2J'")
    )
    assert unknown is not None and "list_sessions" in unknown and "\x1b" not in unknown
    assert describe_failure("x", TimeoutError("slow")) is not None
    assert describe_failure("x", ValueError("a bug")) is None


def test_mcp_tokens_have_a_scope_of_their_own() -> None:
    secret = "s" * 40
    token = adapters.make_mcp_token(secret, 60, subject="agent", now=1000.0)
    claims = adapters.verify_mcp_token(secret, token, now=1010.0)
    assert claims.subject == "agent" and claims.expires_at == 1060.0
    with pytest.raises(adapters.McpTokenError, match="expired"):
        adapters.verify_mcp_token(secret, token, now=1060.0)
    with pytest.raises(adapters.McpTokenError):
        adapters.verify_mcp_token("t" * 40, token, now=1010.0)
    feed = adapters.make_token(secret, adapters.FeedScopes.read_all(control=True), 60)
    with pytest.raises(adapters.McpTokenError):
        adapters.verify_mcp_token(secret, feed)
    with pytest.raises(adapters.FeedTokenError):
        adapters.verify_token(secret, adapters.make_mcp_token(secret, 60))
    for ttl in (0, -1, 400 * 86400):
        with pytest.raises(adapters.McpTokenError):
            adapters.make_mcp_token(secret, ttl)
    with pytest.raises(adapters.McpTokenError):
        adapters.verify_mcp_token(secret, "x" * 10_000)


# -- the watch stream and the trio client, over a real socket ---------------------------------------


class _Handler:
    def __init__(self) -> None:
        self.send, self.receive = trio.open_memory_channel[Any](10)
        self.calls = 0
        self.open_watches = 0

    async def __call__(self, request: adapters.ControlRequest) -> Any:
        self.calls += 1
        if request.op == "watch":

            @asynccontextmanager
            async def items() -> AsyncIterator[AsyncIterator[Any]]:
                self.open_watches += 1
                try:
                    yield self.receive.clone()
                finally:
                    self.open_watches -= 1

            return adapters.ControlStream({"watching": True}, items)
        if request.op == "stop":
            raise engine.SessionNotFoundError("no session matches 'x'")
        return {"pong": True}


async def test_a_watch_streams_until_the_client_leaves(tmp_path: Path) -> None:
    handler = _Handler()
    async with (
        adapters.open_control_server(tmp_path / "c.sock", handler) as server,
        adapters.open_control_client(tmp_path / "c.sock", timeout=5) as client,
    ):
        async with client.open_watch("watch", {"session": "s"}) as watch:
            assert watch.first == {"watching": True}
            assert server.statistics().watching == 1
            for n in range(3):
                await handler.send.send({"n": n})
            got = [await watch.__anext__() for _ in range(3)]
            assert got == [{"n": 0}, {"n": 1}, {"n": 2}]
            # other calls go on meanwhile, on connections of their own
            assert await client.call("ping") == {"pong": True}
        await poll_until(lambda: handler.open_watches == 0)  # the server notices the client left
        assert server.statistics().watching == 0


async def test_the_client_replaces_connections_the_daemon_closed(tmp_path: Path) -> None:
    handler = _Handler()
    async with (
        adapters.open_control_server(tmp_path / "c.sock", handler, idle_timeout=0.05) as server,
        adapters.open_control_client(tmp_path / "c.sock", timeout=5) as client,
    ):
        assert await client.call("ping") == {"pong": True}
        # the server closes the idle pooled connection
        await poll_until(lambda: server.statistics().timed_out == 1)
        assert await client.call("ping") == {"pong": True}
        with pytest.raises(adapters.DaemonError) as refused:
            await client.call("stop", {"session": "x"})
        assert refused.value.type == "SessionNotFoundError"
        results: list[Any] = []
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(lambda: _append(results, client.call("ping")))
        assert results == [{"pong": True}] * 10
    async with adapters.open_control_client(tmp_path / "c.sock", timeout=5) as client:
        with pytest.raises(adapters.DaemonNotRunningError, match="scribe serve"):
            await client.call("ping")


async def _append(out: list[Any], call: Any) -> None:
    out.append(await call)
