"""Simple statements on the trio thread: psycopg's non-blocking generators driven on the connection socket.

psycopg's sync and async cursors share generators (``Cursor._execute_gen``) that yield what they would
wait for (readable, writable) and are sent what became ready; :class:`StatementDriver` runs one with trio's
socket waits instead of a blocking ``select``, and :func:`run_simple` runs one autocommit statement that
way, cancelling it on the server when the caller is cancelled.
"""

from __future__ import annotations

import contextlib
import select
import selectors
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, LiteralString, TypeAlias, TypeVar, final

import outcome
import psycopg
import psycopg.pq
import psycopg.rows
import psycopg.sql
import psycopg_pool
import trio
from psycopg.abc import PQGen

from ._cancel import FAST_CANCEL_PERIOD, FIRST_CANCEL_RETRY, CancelChannel, next_cancel_retry

__all__ = ["Params", "Query", "SimpleStatement", "StatementDriver", "run_simple"]

T = TypeVar("T")

#: SQL text (a literal string) or a statement composed with :mod:`psycopg.sql`.
Query: TypeAlias = LiteralString | bytes | psycopg.sql.SQL | psycopg.sql.Composed
#: Query parameters: a sequence for ``%s`` placeholders, a mapping for ``%(name)s``.
Params: TypeAlias = Sequence[Any] | Mapping[str, Any] | None

# After a cancellation, how long the server has to end the statement before the connection is dropped
# instead of going back to the pool.
_CANCEL_CLEANUP_LIMIT: Final = 5.0

# The values psycopg's generators yield (psycopg.waiting's Wait) and are sent (Ready).
_WAIT_R: Final = selectors.EVENT_READ
_WAIT_W: Final = selectors.EVENT_WRITE
# How often a wait for "readable or writable" polls for readability while it waits to write.
_RW_RECHECK: Final = 0.005


def _poll_now(fileno: int, wait: int) -> int:
    """The readiness of ``fileno`` for ``wait`` right now, without blocking (0: not ready)."""
    events = 0
    if wait & _WAIT_R:
        events |= select.POLLIN
    if wait & _WAIT_W:
        events |= select.POLLOUT
    poller = select.poll()
    poller.register(fileno, events)
    ready = 0
    for _, revents in poller.poll(0):
        if revents & (select.POLLIN | select.POLLERR | select.POLLHUP) and wait & _WAIT_R:
            ready |= _WAIT_R
        if revents & (select.POLLOUT | select.POLLERR | select.POLLHUP) and wait & _WAIT_W:
            ready |= _WAIT_W
    return ready


async def _wait_socket(fileno: int, wait: int) -> int:
    """Wait until ``fileno`` is ready as psycopg's ``wait`` value asks; return the ``Ready`` value."""
    if wait == _WAIT_R:
        await trio.lowlevel.wait_readable(fileno)
        return _WAIT_R
    if wait == _WAIT_W:
        await trio.lowlevel.wait_writable(fileno)
        return _WAIT_W
    if not wait & (_WAIT_R | _WAIT_W):
        raise psycopg.InternalError(f"bad poll status: {wait}")
    # Readable or writable: trio waits for one direction per call, so wait to write and look for
    # something to read now and then.
    while not (ready := _poll_now(fileno, wait)):
        with trio.move_on_after(_RW_RECHECK):
            await trio.lowlevel.wait_writable(fileno)
    await trio.lowlevel.checkpoint()
    return ready


@final
class StatementDriver:
    """Runs one of psycopg's non-blocking generators on the trio thread, waiting on the connection's
    socket with trio. A cancellation leaves the generator where it was, so :meth:`run` can be called again
    to carry it on."""

    __slots__ = ("_fileno", "_gen", "_wait", "done")

    def __init__(self, gen: PQGen[None], fileno: int) -> None:
        self._gen = gen
        self._fileno = fileno
        self._wait: int | None = None
        self.done = False

    def _step(self, ready: int | None) -> bool:
        try:
            self._wait = next(self._gen) if ready is None else self._gen.send(ready)
        except StopIteration:
            self.done = True
            return True
        except OSError as exc:
            self.done = True
            raise psycopg.OperationalError("connection socket closed") from exc
        except BaseException:
            self.done = True
            raise
        return False

    async def run(self) -> None:
        if self.done:
            return
        if self._wait is None and self._step(None):
            return
        while True:
            assert self._wait is not None
            try:
                ready = await _wait_socket(self._fileno, self._wait)
            except OSError as exc:
                self.done = True
                self._gen.close()
                raise psycopg.OperationalError("connection socket closed") from exc
            if self._step(ready):
                return


@final
@dataclass(frozen=True, slots=True)
class SimpleStatement(Generic[T]):
    """An autocommit statement that can run on the trio thread, and how to read its result."""

    sql: Query
    params: Params
    row_factory: psycopg.rows.RowFactory[Any] | None
    extract: Callable[[psycopg.Cursor[Any]], T]


async def run_simple(
    pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]],
    conn: psycopg.Connection[Any],
    simple: SimpleStatement[T],
    cancel_channel: CancelChannel,
    on_cancelled: Callable[[], object],
) -> outcome.Outcome[T]:
    """Run one autocommit statement on the trio thread with ``conn`` (taken from ``pool``), driving
    psycopg's non-blocking generator, and give the connection back to the pool.

    Returns:
        The statement's result, or the driver's error as an ``outcome.Error`` (the caller translates it).

    Cancellation: ``on_cancelled`` is called, the statement is cancelled on the server and the generator
    is carried on to its end under a shielded, time-limited scope; the connection goes back to the pool
    only when it came out of that clean, and the call raises ``trio.Cancelled``.
    """
    keep = True
    try:
        if simple.row_factory is None:
            cur: psycopg.Cursor[Any] = conn.cursor()
        else:
            cur = conn.cursor(row_factory=simple.row_factory)
        driver = StatementDriver(cur._execute_gen(simple.sql, simple.params), conn.pgconn.socket)
        try:
            await driver.run()
        except Exception as exc:
            return outcome.Error(exc)
        except BaseException:
            on_cancelled()
            keep = await _finish_cancelled(conn, driver, cancel_channel)
            raise
        return outcome.capture(simple.extract, cur)
    finally:
        if not keep and not conn.closed:
            with contextlib.suppress(OSError, psycopg.Error):
                trio.lowlevel.notify_closing(conn.pgconn.socket)
            conn.close()
        pool.putconn(conn)


async def _finish_cancelled(
    conn: psycopg.Connection[Any], driver: StatementDriver, cancel_channel: CancelChannel
) -> bool:
    """Cancel the statement on the server and carry the generator on to its end; True when the
    connection came out idle and usable."""
    with trio.CancelScope(shield=True), trio.move_on_after(_CANCEL_CLEANUP_LIMIT):
        delay = FIRST_CANCEL_RETRY
        slow_from = trio.current_time() + FAST_CANCEL_PERIOD
        # A cancel that reaches the server before the statement is lost: repeat it until the end.
        while not driver.done:
            await trio.to_thread.run_sync(cancel_channel.cancel, conn)
            with trio.move_on_after(delay):
                with contextlib.suppress(psycopg.Error):  # the cancelled statement's own error
                    await driver.run()
            delay = next_cancel_retry(delay, fast=trio.current_time() < slow_from)
    return (
        driver.done
        and not conn.broken
        and conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    )
