"""Change notices from PostgreSQL: LISTEN on a dedicated session-level connection, turned into
:class:`engine.ChangeNotice` values (the triggers of migrations ``0201_change_notices`` and ``0202_summary_notices`` send them).

The connection is driven from trio on its socket (``wait_readable``, then libpq's
``consume_input``/``notifies``), so waiting costs no thread and cancels at once. When the connection
breaks (the server restarted, the network went away) it is opened again with bounded backoff, and
the first notice after that is :attr:`engine.NoticeKind.RESYNC`: what changed during the break is
read from the tables by the receiver.

At start, a probe checks that a NOTIFY sent on another connection reaches the listening one: behind a
pooler in transaction mode (PgBouncer's ``pool_mode = transaction``) LISTEN lands on whichever server
connection ran that transaction and notices are silently lost, so the listener refuses to start
(:class:`ChangeNoticesUnavailableError`) rather than miss them.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import orjson
import psycopg
import trio

import engine

from ._errors import DatabaseError

__all__ = [
    "CHANGE_CHANNELS",
    "ChangeNoticesUnavailableError",
    "open_change_listener",
    "parse_change_notice",
]

_log = logging.getLogger(__name__)

#: The channels listened on.
CHANGE_CHANNELS: Final = ("scribe_sessions", "scribe_worklog", "scribe_summaries")
_CONNECT_TIMEOUT: Final = 5
_RETRY_FIRST: Final = 0.1
_BUFFER: Final = 1000
_PROBE_CHANNEL: Final = "scribe_probe"
#: How long the start-up probe's NOTIFY may take to reach the listening connection.
PROBE_TIMEOUT: Final = 5.0


class ChangeNoticesUnavailableError(DatabaseError):
    """A NOTIFY sent to the database does not reach this process's listening connection (a pooler in
    transaction mode between them, most likely): other daemons' changes would be silently missed."""


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
    if channel == "scribe_summaries":
        version = data.get("v")
        if isinstance(version, int) and not isinstance(version, bool):
            return engine.ChangeNotice(engine.NoticeKind.SUMMARY, sid, owner=owner, version=version)
        return None
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
        for channel in (*CHANGE_CHANNELS, _PROBE_CHANNEL):
            conn.execute(f"LISTEN {channel}")
    except BaseException:
        conn.close()
        raise
    return conn


def _send_probe(url: str, token: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT) as conn:
        conn.execute("SELECT pg_notify(%s, %s)", (_PROBE_CHANNEL, token))


async def _probe(
    url: str,
    conn: psycopg.Connection[Any],
    backlog: collections.deque[tuple[str, str]],
    timeout: float,
) -> None:
    """Send a NOTIFY on another connection and wait for it on ``conn``.

    Raises:
        ChangeNoticesUnavailableError: it did not come within ``timeout`` seconds.
    """
    token = secrets.token_hex(8)
    await trio.to_thread.run_sync(_send_probe, url, token)
    pgconn = conn.pgconn
    with trio.move_on_after(timeout):
        while (_PROBE_CHANNEL, token) not in backlog:
            await trio.lowlevel.wait_readable(pgconn.socket)
            pgconn.consume_input()
            while (n := pgconn.notifies()) is not None:
                backlog.append((n.relname.decode(), n.extra.decode()))
        backlog.remove((_PROBE_CHANNEL, token))
        return
    raise ChangeNoticesUnavailableError(
        f"a NOTIFY sent to the database did not reach this daemon's LISTEN connection within "
        f"{timeout:g} s: is the database URL a pooler in transaction mode? Other daemons' "
        "changes would be missed. LISTEN/NOTIFY needs session-level connections: use the server "
        "directly or a pooler in session mode (PgBouncer: pool_mode = session)"
    )


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
    conn: psycopg.Connection[Any] | None,
    backlog: collections.deque[tuple[str, str]],
) -> None:
    """Pump notices from ``conn`` (None: not connected yet, since when the break is dated), and
    reconnect whenever it breaks."""
    throttle = engine.LogThrottle(_log)
    delay = _RETRY_FIRST
    broke_at = None if conn is not None else time.time()
    while True:
        if conn is None:
            backlog = collections.deque()
            try:
                conn = await trio.to_thread.run_sync(_connect, url, backlog)
            except psycopg.Error as exc:
                throttle.failed("listen", "change notices unavailable (retrying): %s", exc)
                await trio.sleep(delay)
                delay = min(delay * 2, retry_max)
                continue
            throttle.recovered("listen", "change notices arrive again")
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
            conn = None


@contextlib.asynccontextmanager
async def open_change_listener(
    url: str, *, retry_max: float = 2.0, probe_timeout: float = PROBE_TIMEOUT
) -> AsyncIterator[trio.MemoryReceiveChannel[engine.ChangeNotice]]:
    """Listen for change notices on the database at ``url`` for the block; the channel yields them in
    the order the server sent them (commit order).

    The block starts once the first LISTEN is in place and a probe NOTIFY reached it (or the first
    connection attempt failed: it is retried in the background, every ``retry_max`` seconds at most,
    and a :attr:`~engine.NoticeKind.RESYNC` notice comes first once it works). Notices wait in a bounded
    buffer; a receiver that falls behind holds the listener back (the server keeps the rest).

    Raises:
        ChangeNoticesUnavailableError: the probe NOTIFY did not arrive within ``probe_timeout``
            seconds (a pooler in transaction mode).

    Cancellation: cancelling the block stops listening at once and closes the connection.
    """
    send, receive = trio.open_memory_channel[engine.ChangeNotice](_BUFFER)
    backlog: collections.deque[tuple[str, str]] = collections.deque()
    conn: psycopg.Connection[Any] | None
    try:
        conn = await trio.to_thread.run_sync(_connect, url, backlog)
    except psycopg.Error as exc:
        _log.warning("change notices unavailable (retrying): %s", exc)
        conn = None
    if conn is not None:
        try:
            await _probe(url, conn, backlog, probe_timeout)
        except psycopg.Error as exc:  # the server went away meanwhile: retried in the background
            _log.warning("change notices unavailable (retrying): %s", exc)
            conn.close()
            conn = None
        except BaseException:
            conn.close()
            raise
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_listen, url, send, retry_max, conn, backlog)
        try:
            yield receive
        finally:
            nursery.cancel_scope.cancel()
