"""A control answer that goes on: its first result, then one event line per item until either side
stops. Imports no trio.

A handler returns a :class:`ControlStream` instead of a plain result for an operation that watches
(``watch``). The control server opens its items first, so nothing published between the first
answer and the first item is missed, writes the first result as the usual response line, then one
line ``{"id": ..., "event": item}`` per item. The stream ends when the items end (the connection is
then closed) or when the client closes the connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, final

__all__ = ["ControlStream"]


@final
@dataclass(frozen=True, slots=True)
class ControlStream:
    """A first result and the items that follow it.

    Attributes:
        first: the JSON-ready result answered first.
        open_items: opens the items; the server enters it before answering ``first`` and leaves it
            when the stream ends.
    """

    first: Any
    open_items: Callable[[], AbstractAsyncContextManager[AsyncIterator[Any]]]
