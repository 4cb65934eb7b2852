"""Change notices from PostgreSQL: LISTEN on a dedicated session-level connection, turned into
:class:`engine.ChangeNotice` values (the triggers of migration ``0201_change_notices`` send them).

The connection is driven from trio on its socket (``wait_readable``, then libpq's
``consume_input``/``notifies``), so waiting costs no thread and cancels at once. When the connection
breaks (the server restarted, the network went away) it is opened again with bounded backoff, and
the first notice after that is :attr:`engine.NoticeKind.RESYNC`: what changed during the break is
read from the tables by the receiver.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import orjson
import psycopg
import trio

import engine

__all__ = ["CHANGE_CHANNELS", "open_change_listener", "parse_change_notice"]

_log = logging.getLogger(__name__)

#: The channels listened on.
CHANGE_CHANNELS: Final = ("scribe_sessions", "scribe_worklog")
_CONNECT_TIMEOUT: Final = 5
_RETRY_FIRST: Final = 0.1
_BUFFER: Final = 1000


def parse_change_notice(channel: str, payload: str) -> engine.ChangeNotice | None:
    """The notice a NOTIFY on ``channel`` with ``payload`` stands for (None: not one of ours)."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(sid := data.get("s"), str):
        return None
    owner = data.get("o") if isinstance(data.get("o"), str) else None
    if channel not in CHANGE_CHANNELS:
        return None
    if channel == "scribe_sessions":
        return engine.ChangeNotice(engine.NoticeKind.SESSION, sid, owner=owner)
    first, last = data.get("f"), data.get("l")
    if channel == "scribe_worklog" and isinstance(first, int) and isinstance(last, int):
        return engine.ChangeNotice(engine.NoticeKind.WORKLOG, sid, first, last, owner=owner)
    return None


def _connect(url: str, backlog: collections.deque[tuple[str, str]]) -> psycopg.Connection[Any]:
    conn = psycopg.connect(
        url,
        autocommit=True,
        connect_timeout=_CONNECT_TIMEOUT,
        application_name="scribe-listen",
        keepalives=1,
        keepalives_idle=10,
        keepalives_interval=5,
        keepalives_count=3,
    )
    try:
        conn.add_notify_handler(lambda n: backlog.append((n.channel, n.payload)))
        for channel in CHANGE_CHANNELS:
            conn.execute(f"LISTEN {channel}")
    except BaseException:
        conn.close()
        raise
    return conn


async def _pump(
    conn: psycopg.Connection[Any],
    backlog: collections.deque[tuple[str, str]],
    send: trio.MemorySendChannel[engine.ChangeNotice],
) -> None:
    pgconn = conn.pgconn
    while True:
        while backlog:
            notice = parse_change_notice(*backlog.popleft())
            if notice is not None:
                await send.send(notice)
        await trio.lowlevel.wait_readable(pgconn.socket)
        pgconn.consume_input()  # a broken connection raises here
        while (n := pgconn.notifies()) is not None:
            backlog.append((n.relname.decode(), n.extra.decode()))


async def _listen(
    url: str,
    send: trio.MemorySendChannel[engine.ChangeNotice],
    retry_max: float,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    throttle = engine.LogThrottle(_log)
    delay, broke_at, started = _RETRY_FIRST, None, False
    while True:
        backlog: collections.deque[tuple[str, str]] = collections.deque()
        try:
            conn = await trio.to_thread.run_sync(_connect, url, backlog)
        except psycopg.Error as exc:
            throttle.failed("listen", "change notices unavailable (retrying): %s", exc)
            broke_at = broke_at or time.time()
            if not started:
                task_status.started()
                started = True
            await trio.sleep(delay)
            delay = min(delay * 2, retry_max)
            continue
        throttle.recovered("listen", "change notices arrive again")
        if not started:
            task_status.started()
            started = True
        delay = _RETRY_FIRST
        try:
            if broke_at is not None:
                await send.send(engine.ChangeNotice(engine.NoticeKind.RESYNC, since=broke_at))
                broke_at = None
            await _pump(conn, backlog, send)
        except (psycopg.Error, OSError) as exc:
            throttle.failed("listen", "the change notice connection broke (reconnecting): %s", exc)
            broke_at = time.time()
        finally:
            conn.close()


@contextlib.asynccontextmanager
async def open_change_listener(
    url: str, *, retry_max: float = 2.0
) -> AsyncIterator[trio.MemoryReceiveChannel[engine.ChangeNotice]]:
    """Listen for change notices on the database at ``url`` for the block; the channel yields them in
    the order the server sent them (commit order).

    The block starts once the first LISTEN is in place (or its first attempt failed: it is retried
    in the background, every ``retry_max`` seconds at most, and a
    :attr:`~engine.NoticeKind.RESYNC` notice comes first once it works). Notices wait in a bounded
    buffer; a receiver that falls behind holds the listener back (the server keeps the rest).

    Cancellation: cancelling the block stops listening at once and closes the connection.
    """
    send, receive = trio.open_memory_channel[engine.ChangeNotice](_BUFFER)
    async with trio.open_nursery() as nursery:
        await nursery.start(_listen, url, send, retry_max)
        try:
            yield receive
        finally:
            nursery.cancel_scope.cancel()
