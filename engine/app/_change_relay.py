"""The daemon's relay of other daemons' changes: change notices from the shared database, published
on this daemon's bus (and so its feed and dashboard) by :class:`~engine._scribe._remote_relay.RemoteRelay`."""

from __future__ import annotations

import logging

import trio

import engine

from .._core._errors import ScribeError
from .._core._log_throttle import LogThrottle
from .._scribe._remote_relay import RemoteRelay
from ._stack import Stack

__all__ = ["relay_changes"]

_log = logging.getLogger(__name__)


async def relay_changes(
    stack: Stack, notices: trio.MemoryReceiveChannel[engine.ChangeNotice]
) -> None:
    """Publish what the change notices of the stack's database (from
    :func:`adapters.open_change_listener`) name until cancelled; a notice that cannot be read is
    logged (the first, then the recovery) and skipped (the next notice of its session, or a resync,
    catches up).

    Cancellation: stops at once.
    """
    relay = RemoteRelay(stack.engine, stack.registry, stack.store, stack.scribe.live)
    throttle = LogThrottle(_log)
    async for notice in notices:
        try:
            await relay.handle(notice)
        except ScribeError as exc:
            throttle.failed("relay", "a change of another daemon was not relayed: %s", exc)
        else:
            throttle.recovered("relay", "changes of other daemons are relayed again")
