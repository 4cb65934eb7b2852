"""Serving Scribe's MCP server on standard input and output (what ``scribe mcp`` runs).

The transport reads and writes the two pipes with trio directly (no worker thread per line, as a
file-based transport needs), one JSON-RPC message per line as the MCP stdio transport defines it.
Nothing but protocol goes to standard output: while serving, descriptor 1 points at standard error
and descriptor 0 at the null device (the protocol uses private duplicates), so a stray print or a
child process cannot corrupt or steal the stream; both are restored on the way out.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from typing import Any, Final

import anyio
import mcp_types as types
import orjson
import trio
from mcp.shared.message import SessionMessage

from ._app import McpApp

__all__ = ["MAX_MESSAGE", "serve_mcp_stdio"]

_log = logging.getLogger(__name__)

#: The longest message line read, in bytes; a longer one is answered as a parse error and skipped.
MAX_MESSAGE: Final = 16 * 1024 * 1024
_READ: Final = 1 << 16
#: Seconds the last answers get to reach the client once the server is done.
_DRAIN: Final = 5.0


@contextlib.contextmanager
def _claimed_stdio() -> Any:
    """Private duplicates of descriptors 0 and 1; 0 and 1 themselves diverted meanwhile."""
    wire_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    wire_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    saved_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    saved_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
        yield wire_in, wire_out
    finally:
        os.close(null)
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)


async def _pump_in(
    wire: trio.lowlevel.FdStream, to_server: anyio.abc.ObjectSendStream[SessionMessage | Exception]
) -> None:
    buffer = bytearray()
    skipping = False
    async with to_server:
        while True:
            chunk = await wire.receive_some(_READ)
            if not chunk:
                return  # the client closed its end: the server finishes
            buffer += chunk
            while True:
                nl = buffer.find(b"\n")
                if nl < 0:
                    if len(buffer) > MAX_MESSAGE:
                        buffer.clear()
                        if not skipping:
                            skipping = True
                            await to_server.send(ValueError("message longer than the limit"))
                    break
                line = bytes(buffer[:nl])
                del buffer[: nl + 1]
                if skipping:
                    skipping = False  # the end of the oversized line
                    continue
                if not line.strip():
                    continue
                try:
                    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                except Exception as exc:
                    await to_server.send(exc)
                    continue
                await to_server.send(SessionMessage(message))


def _line(message: types.JSONRPCMessage) -> bytes:
    """One message as its line. A result (the SDK made it JSON-ready) is encoded in one pass."""
    if isinstance(message, types.JSONRPCResponse):
        with contextlib.suppress(TypeError):  # what orjson cannot encode, pydantic may
            return orjson.dumps(
                {"jsonrpc": "2.0", "id": message.id, "result": message.result},
                option=orjson.OPT_APPEND_NEWLINE,
            )
    return message.model_dump_json(by_alias=True, exclude_unset=True).encode() + b"\n"


async def _pump_out(
    wire: trio.lowlevel.FdStream, from_server: anyio.abc.ObjectReceiveStream[SessionMessage]
) -> None:
    async with from_server:
        async for session_message in from_server:
            await wire.send_all(_line(session_message.message))


@contextlib.asynccontextmanager
async def _open_stdio() -> AsyncIterator[
    tuple[
        anyio.abc.ObjectReceiveStream[SessionMessage | Exception],
        anyio.abc.ObjectSendStream[SessionMessage],
    ]
]:
    with _claimed_stdio() as (wire_in, wire_out):
        reader = trio.lowlevel.FdStream(wire_in)
        writer = trio.lowlevel.FdStream(wire_out)
        async with reader, writer:
            to_server, server_reads = anyio.create_memory_object_stream[SessionMessage | Exception](0)
            server_writes, from_server = anyio.create_memory_object_stream[SessionMessage](0)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pump_in, reader, to_server)
                nursery.start_soon(_pump_out, writer, from_server)
                try:
                    yield server_reads, server_writes
                except BaseException:
                    nursery.cancel_scope.cancel()
                    raise
                # what the server still wrote goes out; the reader ends at the client's EOF
                server_writes.close()
                nursery.cancel_scope.deadline = trio.current_time() + _DRAIN


async def serve_mcp_stdio(app: McpApp) -> None:
    """Serve ``app`` on stdin/stdout until the client closes stdin.

    Cancellation: the connection ends at once; descriptors 0 and 1 are restored.
    """
    async with _open_stdio() as (read, write):
        await app.server.run(read, write, app.server.create_initialization_options())
