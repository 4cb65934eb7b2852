"""The daemon's own MCP backend: the streamable HTTP transport's tool calls go straight to the
control handler, through the same operations (and the same argument checks) as the control socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final, final

import msgspec

import adapters

from .._core._errors import ScribeError
from ._control_handler import ControlHandler

__all__ = ["HandlerBackend"]

_json: Final = msgspec.json.Encoder(enc_hook=str)


def _refusal(exc: BaseException) -> adapters.DaemonError | None:
    inner = exc
    while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
        inner = inner.exceptions[0]
    if isinstance(inner, ScribeError):
        return adapters.DaemonError(type(inner).__name__, str(inner))
    return None


def _plain(value: Any) -> Any:
    # what a control socket client would have decoded: JSON values only
    return msgspec.json.decode(_json.encode(value))


@final
class _Watch:
    def __init__(self, first: Any, items: AsyncIterator[Any]) -> None:
        self.first = first
        self._items = items

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._items


@final
class HandlerBackend:
    """An :class:`adapters.McpBackend` calling ``handler`` in this process."""

    def __init__(self, handler: ControlHandler) -> None:
        self._handler = handler

    def _request(self, op: str, args: Mapping[str, Any] | None) -> adapters.ControlRequest:
        try:
            return adapters.parse_control_request(
                adapters.encode_control_request(None, op, dict(args or {}))
            )
        except adapters.ControlProtocolError as exc:
            raise adapters.DaemonError(type(exc).__name__, str(exc)) from None

    async def _handle(self, op: str, args: Mapping[str, Any] | None) -> Any:
        request = self._request(op, args)
        try:
            return await self._handler.handle(request)
        except BaseException as exc:
            refusal = _refusal(exc)
            if refusal is None:
                raise
            raise refusal from exc

    async def call(self, op: str, args: Mapping[str, Any] | None = None) -> Any:
        """The handler's answer, as the socket would give it.

        Raises:
            DaemonError: the handler refused (its error's type and message).

        Cancellation: as the handler's operation.
        """
        result = await self._handle(op, args)
        if isinstance(result, adapters.ControlStream):
            raise adapters.DaemonError("ControlProtocolError", f"{op} is a watch")
        return _plain(result)

    @asynccontextmanager
    async def open_watch(
        self, op: str, args: Mapping[str, Any] | None = None
    ) -> AsyncIterator[_Watch]:
        """A watching operation for the duration of the block.

        Raises:
            DaemonError: the handler refused, or ``op`` does not watch.

        Cancellation: leaving the block ends the watch.
        """
        result = await self._handle(op, args)
        if not isinstance(result, adapters.ControlStream):
            raise adapters.DaemonError("ControlProtocolError", f"{op} does not watch")
        async with result.open_items() as items:
            yield _Watch(_plain(result.first), items)
