"""Keeping the embedded server up: its postmaster checked every second and started again when gone."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NoReturn

import trio

from ._embedded import EmbeddedServer
from ._errors import EmbeddedServerError
from ._shared_server import _Holders, _locked, released

__all__ = ["supervise_embedded_server"]

_log = logging.getLogger(__name__)


def _restart_if_dead(server: EmbeddedServer) -> bool:
    """Start the server again unless it runs or this process has let it go (under the holders'
    lock, so two processes sharing it start it once, and a server stopped as its block ended stays
    stopped); True when it was started."""
    with _locked(_Holders(server.pgdata).lock):
        if released(server) or (server.postmaster_alive() and server.is_running()):
            return False
        server.start()
        return True


async def supervise_embedded_server(
    server: EmbeddedServer,
    *,
    interval: float = 1.0,
    backoff_initial: float = 0.5,
    backoff_max: float = 30.0,
    on_restart: Callable[[int], object] | None = None,
) -> NoReturn:
    """Keep the embedded server running: every ``interval`` seconds check that its postmaster lives
    and, when it is gone, start it again (a failed start is retried with backoff doubling from
    ``backoff_initial`` to ``backoff_max``). Each restart is logged and reported to ``on_restart``
    with the number of restarts so far. Start it as a service. Once the server's
    :func:`~adapters.open_embedded_server` block has ended (a daemon shutting down stops its
    server before its services end), it is never started again.

    Cancellation: between checks; a start under way finishes in its worker thread first (bounded by
    ``pg_ctl``'s timeout).
    """
    restarts = 0
    delay = backoff_initial
    while True:
        await trio.sleep(interval)
        if released(server) or server.postmaster_alive():
            delay = backoff_initial
            continue
        _log.warning(
            "the embedded PostgreSQL server (%s) is gone: starting it again", server.pgdata
        )
        try:
            started = await trio.to_thread.run_sync(_restart_if_dead, server)
        except (EmbeddedServerError, OSError) as exc:
            _log.error("starting the embedded PostgreSQL server again failed: %s", exc)
            await trio.sleep(delay)
            delay = min(delay * 2, backoff_max)
            continue
        delay = backoff_initial
        if started:
            restarts += 1
            _log.warning("the embedded PostgreSQL server runs again (restart %d)", restarts)
            if on_restart is not None:
                on_restart(restarts)
