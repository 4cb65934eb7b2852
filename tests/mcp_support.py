"""MCP clients of ``scribe mcp`` as agents run them: the official Python SDK's stdio client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
import trio
from daemon_support import SCRIBE
from mcp import Client, ClientSession
from mcp.client.session import IncomingMessage
from mcp.client.stdio import StdioServerParameters, stdio_client


def server_parameters(env: Mapping[str, str], *extra: str) -> StdioServerParameters:
    """``scribe mcp`` as an agent's configuration starts it."""
    return StdioServerParameters(command=SCRIBE, args=["mcp", *extra], env=dict(env))


@asynccontextmanager
async def open_client(
    env: Mapping[str, str], *extra: str, updates: list[str] | None = None
) -> AsyncIterator[ClientSession]:
    """A connected, initialised client of a ``scribe mcp`` subprocess (the 2025 protocol, as the
    stdio client negotiates it); the URIs of ``resources/updated`` notifications go to ``updates``."""

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, types.ResourceUpdatedNotification) and updates is not None:
            updates.append(str(message.params.uri))

    async with stdio_client(server_parameters(env, *extra)) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as session:
            await session.initialize()
            yield session


async def call(session: ClientSession, name: str, args: Mapping[str, Any]) -> Any:
    """The structured answer of a tool call that must succeed."""
    result = await session.call_tool(name, dict(args))
    assert not result.is_error, result.content
    assert result.content and result.content[0].type == "text" and result.content[0].text
    return result.structured_content


async def refused(session: ClientSession, name: str, args: Mapping[str, Any]) -> str:
    """The message of a tool call that must fail as a tool error."""
    result = await session.call_tool(name, dict(args))
    assert result.is_error, result.structured_content
    assert result.structured_content is None
    first = result.content[0]
    assert first.type == "text"
    return first.text


async def first_listened_update(client: Client, uri: str, work_tree: Path) -> Any:
    """The first event a ``subscriptions/listen`` stream for ``uri`` delivers while a file of
    ``work_tree`` keeps changing (the watch behind it opens in the background)."""
    async with client.listen(resource_subscriptions=[uri]) as events:
        assert events.honored.resource_subscriptions == [uri]
        async with trio.open_nursery() as nursery:

            async def change() -> None:
                for n in range(120):
                    (work_tree / "app.py").write_text(f"a = {n}\n")
                    await trio.sleep(0.5)

            nursery.start_soon(change)
            with trio.fail_after(60):
                event = await events.__anext__()
            nursery.cancel_scope.cancel()
    return event
