"""What the MCP server needs of the daemon: calls and watches of its control operations.

Over stdio, ``scribe mcp`` is a thin client of the running daemon's control socket
(:class:`~adapters.AsyncControlClient` is a backend as it is); inside the daemon, the streamable HTTP
transport calls the daemon's handler directly through the same operations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

__all__ = ["McpBackend", "McpWatch"]


class McpWatch(Protocol):
    """A watch: its first answer, then its events until the daemon ends it."""

    first: Any

    def __aiter__(self) -> AsyncIterator[Any]: ...


class McpBackend(Protocol):
    """The daemon, as the MCP server reaches it."""

    async def call(self, op: str, args: Mapping[str, Any] | None = None) -> Any:
        """The result of control operation ``op``.

        Raises:
            DaemonNotRunningError: no daemon answers.
            DaemonError: the daemon refused (its error's type and message).
            TimeoutError: no answer in time.
        """
        ...

    def open_watch(
        self, op: str, args: Mapping[str, Any] | None = None
    ) -> AbstractAsyncContextManager[McpWatch]:
        """A watching operation for the duration of the block (errors as :meth:`call`)."""
        ...
