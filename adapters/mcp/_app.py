"""The MCP server of Scribe: its tools, resources and subscriptions over a daemon backend, on the
official SDK's lowlevel :class:`mcp.server.lowlevel.Server` (on trio, through anyio).

One :class:`McpApp` serves every connection of a transport: ``scribe mcp`` (stdio, one connection)
and the daemon's ``/mcp`` (streamable HTTP, many). A failed call is a tool error with a message
saying what to do (:mod:`._errors`); the server keeps serving. Resource updates reach both kinds of
subscriber: clients of the 2025 protocol through ``resources/subscribe`` and clients of the
2026-07-28 protocol through ``subscriptions/listen``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, cast, final

import mcp_types as types
import msgspec
import trio
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ResourceUpdated
from mcp.shared.exceptions import MCPError

import engine

from ..control._operations import CONTROL_OPERATIONS
from ._backend import McpBackend
from ._context_cache import ContextCache
from ._errors import describe_failure, describe_invalid
from ._resources import read_resource, resource_list, resource_templates
from ._schema import object_schema
from ._tool_calls import ToolCallPath
from ._tools import MCP_TOOLS, McpTool
from ._uris import ResourceUri, parse_uri
from ._watches import SessionWatches

__all__ = ["McpApp", "open_mcp_app"]

_log = logging.getLogger(__name__)

#: Seconds a resource update may take to reach one subscriber before that one is dropped.
SEND_TIMEOUT: Final = 5.0
INSTRUCTIONS: Final = (
    "Scribe keeps the memory of coding sessions. start_session on your work tree (give your own "
    "session id as agent_session_id), add_note and record_decision as you go, get_context, "
    "get_worklog and get_summary to catch up, remember, recall and rehydrate for what outlives a "
    "session, cache_lookup and cache_store for LLM answers. Resources: "
    "scribe://sessions/{id}/worklog and .../summary (subscribe for updates)."
)

Ctx = ServerRequestContext[Any, Any]


def _tool(t: McpTool) -> types.Tool:
    return types.Tool(
        name=t.name,
        title=t.title,
        description=t.description,
        input_schema=object_schema(CONTROL_OPERATIONS[t.op], t.hints),
        output_schema=object_schema(t.output),
        annotations=types.ToolAnnotations(
            title=t.title,
            read_only_hint=t.read_only,
            destructive_hint=False,
            idempotent_hint=t.idempotent,
            open_world_hint=False,
        ),
    )


def _answer(tool: McpTool, result: Any) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=tool.text(result))],
        structured_content=result,
    )


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


@final
class McpApp(metaclass=engine.NoPublicConstructor):
    """Scribe's MCP server over one backend. Get one from :func:`open_mcp_app`.

    Attributes:
        backend: the daemon it serves.
        server: the SDK server to run on a transport.
        tools: the tools it lists, by name.
        contexts: the ``get_context`` answers it keeps while the daemon's events say they hold.
    """

    def __init__(
        self, backend: McpBackend, nursery: trio.Nursery, version: str, cwd: Path | None
    ) -> None:
        self.backend = backend
        self._cwd = cwd
        self.tools = {t.name: t for t in MCP_TOOLS if t.op in CONTROL_OPERATIONS}
        self._listed = types.ListToolsResult(tools=[_tool(t) for t in self.tools.values()])
        self._bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self._bus)
        self._watches = SessionWatches(backend, nursery, self._updated)
        self.contexts = ContextCache(self._watches)
        self._subscribers: dict[str, dict[ServerSession, None]] = {}
        self.server: Server[Any] = Server(
            "scribe",
            version=version,
            title="Scribe",
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_templates,
            on_read_resource=self._read_resource,
            on_subscribe_resource=self._subscribe,
            on_unsubscribe_resource=self._unsubscribe,
            on_subscriptions_listen=self._listen_for,
        )
        # Scribe emits no OpenTelemetry spans (the SDK's default middleware, a span per request, is
        # left out); plain tool calls are answered in one pass.
        self.server.middleware[:] = [ToolCallPath(self.call_tool)]

    @property
    def watched(self) -> frozenset[str]:
        """The sessions whose events are watched now (as subscriptions name them)."""
        return self._watches.watched

    async def call_tool(self, name: str, arguments: Mapping[str, Any] | None) -> types.CallToolResult:
        """Call tool ``name``: its structured answer and text, or a tool error saying what to do.

        Cancellation: the daemon may still carry the call out; nothing is answered.
        """
        tool = self.tools.get(name)
        if tool is None:
            return _error(engine.visible(
                f"unknown tool {name[:100]!r}; the tools are {', '.join(self.tools)}"
            ))
        try:
            args = msgspec.convert(dict(arguments or {}), CONTROL_OPERATIONS[tool.op])
        except msgspec.ValidationError as exc:
            return _error(describe_invalid(name, exc))
        sent = msgspec.to_builtins(args)
        if self._cwd is not None and isinstance(sent.get("repo"), str):
            # a path as the agent gave it, relative to where the agent started this server
            sent["repo"] = os.path.join(self._cwd, sent["repo"])
        try:
            if tool.op == "context":
                return await self._context(tool, sent)
            result = await self.backend.call(tool.op, sent)
        except Exception as exc:
            message = describe_failure(name, exc)
            if message is None:
                raise
            return _error(message)
        return _answer(tool, result)

    async def _context(self, tool: McpTool, sent: dict[str, Any]) -> types.CallToolResult:
        """A ``get_context`` answer: the kept one while it holds, else the daemon's (kept as the
        finished result, its text made once)."""
        key = self.contexts.key(sent)
        kept = self.contexts.lookup_nowait(key)
        if kept is not None:
            await trio.lowlevel.checkpoint()
            return cast(types.CallToolResult, kept)
        mark = self.contexts.mark()
        result = await self.backend.call(tool.op, sent)
        answer = _answer(tool, result)
        self.contexts.offer_nowait(key, result, mark, served=answer)
        return answer

    # -- handlers ---------------------------------------------------------------------------------

    async def _list_tools(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return self._listed

    async def _call_tool(self, ctx: Ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await self.call_tool(params.name, params.arguments)

    async def _list_templates(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=resource_templates())

    async def _list_resources(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return await resource_list(self.backend)

    async def _read_resource(
        self, ctx: Ctx, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        return await read_resource(self.backend, _parse(str(params.uri)))

    async def _subscribe(self, ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        uri = _parse(str(params.uri))
        sessions = self._subscribers.setdefault(str(uri), {})
        if ctx.session not in sessions:
            sessions[ctx.session] = None
            self._watches.acquire(uri.session)
        return types.EmptyResult()

    async def _unsubscribe(
        self, ctx: Ctx, params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        uri = _parse(str(params.uri))
        self._drop(str(uri), uri.session, ctx.session)
        return types.EmptyResult()

    async def _listen_for(
        self, ctx: Ctx, params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        named = {parse_uri(u) for u in params.notifications.resource_subscriptions or ()}
        sessions = {u.session for u in named if u is not None}
        for s in sessions:
            self._watches.acquire(s)
        try:
            return await self._listen(ctx, params)
        finally:
            for s in sessions:
                self._watches.release(s)

    # -- updates ----------------------------------------------------------------------------------

    def _drop(self, uri: str, session: str, subscriber: ServerSession) -> None:
        sessions = self._subscribers.get(uri)
        if sessions is None or subscriber not in sessions:
            return
        del sessions[subscriber]
        if not sessions:
            del self._subscribers[uri]
        self._watches.release(session)

    async def _updated(self, uri: ResourceUri) -> None:
        text = str(uri)
        await self._bus.publish(ResourceUpdated(uri=text))
        for subscriber in list(self._subscribers.get(text, ())):
            sent = False
            with trio.move_on_after(SEND_TIMEOUT):
                try:
                    await subscriber.send_resource_updated(text)
                    sent = True
                except Exception as exc:  # a subscriber gone: its subscription goes too
                    _log.debug("a resource update could not be sent: %s", exc)
            if not sent:
                self._drop(text, uri.session, subscriber)


def _parse(uri: str) -> ResourceUri:
    parsed = parse_uri(uri)
    if parsed is None:
        raise MCPError(
            types.INVALID_PARAMS,
            engine.visible(
                f"not a Scribe resource: {uri[:200]!r}; "
                "they are scribe://sessions/{id}/worklog and scribe://sessions/{id}/summary"
            ),
        )
    return parsed


@asynccontextmanager
async def open_mcp_app(
    backend: McpBackend, *, version: str = "", cwd: Path | None = None
) -> AsyncIterator[McpApp]:
    """Scribe's MCP server over ``backend`` for the duration of the block (its resource watches
    run inside it). With ``cwd``, a relative ``repo`` argument is taken relative to it (an agent's
    ``"."``); without, the daemon refuses relative paths.

    Cancellation: leaving the block ends every watch; connections being served are the
    transport's to end.
    """
    async with trio.open_nursery() as nursery:
        app = McpApp._create(backend, nursery, version, cwd)
        try:
            yield app
        finally:
            nursery.cancel_scope.cancel()
