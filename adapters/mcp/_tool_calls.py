"""``tools/call`` answered in one pass: the server middleware that calls a tool and hands the SDK
the answer as it goes on the wire.

On its own path the SDK re-validates the request against the protocol's surface and then walks
the answer three times (the result model dumped, the dump validated and dumped again) before it is
encoded: for a ``get_context`` answer of a few kilobytes most of what the server spends on a call.
The tools check their own arguments (:data:`~adapters.CONTROL_OPERATIONS`: names, types, sizes)
and their answers are built in the result's shape, so this path skips the duplicates.

It takes only a plain call on an initialised connection of a 2025 protocol: a name, arguments
and ``_meta`` (nothing else, every one of the right type). Anything else and any call on a
2026-07-28 connection (whose results carry more) go the SDK's own way, which answers or refuses
them as it always does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, final

import mcp_types as types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp_types import methods
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

__all__ = ["ToolCallPath", "wire_result"]

_PLAIN: Final = frozenset({"name", "arguments", "_meta"})

ToolCall = Callable[[str, Mapping[str, Any] | None], Awaitable[types.CallToolResult]]


def wire_result(result: types.CallToolResult, version: str) -> dict[str, Any]:
    """``result`` as the SDK puts it on the wire of protocol ``version`` (a 2025 one): built
    directly when it is text and structured content (what the tools answer), else by the SDK."""
    content = [
        {"type": "text", "text": part.text}
        for part in result.content
        if isinstance(part, types.TextContent) and part.annotations is None and part.meta is None
    ]
    if result.meta is not None or len(content) != len(result.content):
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        return methods.serialize_server_result("tools/call", version, dumped)
    out: dict[str, Any] = {"content": content, "isError": result.is_error}
    if result.structured_content is not None:
        out["structuredContent"] = result.structured_content
    return out


def _plain(params: Mapping[str, Any] | None) -> bool:
    if not isinstance(params, Mapping) or not params.keys() <= _PLAIN:
        return False
    arguments, meta = params.get("arguments"), params.get("_meta")
    return (
        isinstance(params.get("name"), str)
        and (arguments is None or isinstance(arguments, dict))
        and (meta is None or isinstance(meta, dict))
    )


@final
class ToolCallPath:
    """Middleware for :attr:`mcp.server.lowlevel.Server.middleware` answering plain ``tools/call``
    requests through ``call`` (see the module docstring); every other message goes on.

    Args:
        call: the tools' call (:meth:`McpApp.call_tool`).
    """

    def __init__(self, call: ToolCall) -> None:
        self._call = call

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """The tool's answer, or the rest of the chain's.

        Cancellation: as the tool call's (the daemon may still carry it out; nothing is answered).
        """
        if (
            ctx.method != "tools/call"
            or ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
            or ctx.session.client_params is None
            or not _plain(ctx.params)
        ):
            return await call_next(ctx)
        assert ctx.params is not None
        result = await self._call(ctx.params["name"], ctx.params.get("arguments"))
        return wire_result(result, ctx.protocol_version)
