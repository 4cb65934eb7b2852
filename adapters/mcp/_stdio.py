"""Serving Scribe's MCP server on standard input and output (what ``scribe mcp`` runs).

Nothing but protocol goes to standard output: while serving, the SDK points file descriptor 1 at
standard error, so a stray print cannot corrupt the stream.
"""

from __future__ import annotations

from mcp.server.stdio import stdio_server

from ._app import McpApp

__all__ = ["serve_mcp_stdio"]


async def serve_mcp_stdio(app: McpApp) -> None:
    """Serve ``app`` on stdin/stdout until the client closes stdin.

    Cancellation: the connection ends at once; stdin and stdout are restored.
    """
    async with stdio_server() as (read, write):
        await app.server.run(read, write, app.server.create_initialization_options())
