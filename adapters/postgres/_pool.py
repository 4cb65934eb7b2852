"""The pool of connections behind a :class:`Database`: psycopg's sync pool, sized and checked for it.

Every pooled connection is in autocommit (a ``run_sync`` opens its own transaction), is named for
``pg_stat_activity``, and gets the statement timeout when the pool opens it. An idle connection is
checked cheaply before it is handed out: only a readable socket costs a round trip.
"""

from __future__ import annotations

import select
from collections.abc import Callable
from typing import Any

import psycopg
import psycopg_pool

__all__ = ["connect_kwargs", "new_pool"]


def connect_kwargs(*, connect_timeout: float, application_name: str) -> dict[str, Any]:
    """The keyword arguments of every connection: the pool's, the probe's and the cancel channel's."""
    return {
        "autocommit": True,
        "connect_timeout": max(1, round(connect_timeout)),
        "application_name": application_name,
    }


def _quick_check(conn: psycopg.Connection[Any]) -> None:
    """Pool ``check`` callback: an idle connection whose socket is readable has either been closed by
    the server or holds a notice; only then pay for a round trip to find out."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("connection is closed")
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        psycopg_pool.ConnectionPool.check_connection(conn)


def new_pool(
    url: str,
    *,
    size: int,
    kwargs: dict[str, Any],
    configure: Callable[[psycopg.Connection[Any]], None],
    acquire_timeout: float,
    connect_timeout: float,
) -> psycopg_pool.ConnectionPool[psycopg.Connection[Any]]:
    """A pool of exactly ``size`` connections to ``url``, not yet opened (``pool.open()`` connects)."""
    return psycopg_pool.ConnectionPool(
        url,
        min_size=size,
        max_size=size,
        open=False,
        kwargs=kwargs,
        configure=configure,
        check=_quick_check,
        timeout=acquire_timeout,
        reconnect_timeout=max(2.0, connect_timeout),
        name="scribe",
        num_workers=2,
    )
