"""PostgreSQL from trio: psycopg's sync connection pool, simple statements on the trio thread.

psycopg 3's async API runs on asyncio only. Its sync and async cursors share non-blocking generators
(``Cursor._execute_gen``) that say when they would block; a simple statement (``execute``, ``fetch``,
``fetchrow``, ``fetchval``: autocommit) takes a pooled connection that is ready at once and drives that
generator on the trio thread, waiting on the connection's socket with trio: no thread hand-over and no
contention for the interpreter lock. When it is cancelled, the statement is cancelled on the server (the
same cancel channel as below) and the generator is carried on to its end under a shielded, time-limited
scope; a connection that does not come out of that clean is closed rather than pooled. A ``run_sync``
transaction, and any statement while the pool has no connection ready (the server is down, connections are
being replaced), runs in a worker thread holding one pooled connection instead. There is one slot per
pooled connection, and every query is first admitted through a :class:`engine.PriorityLimiter` under the
calling session's priority, so a HIGH session's query overtakes the queued LOW ones.

In a worker thread, cancellation is done on the server: when the waiting trio task is cancelled, a second thread cancels the
worker's statement (and repeats it until the worker is done, which covers a cancel arriving just before the
statement does), and the task waits for the worker to come back; a thread is never abandoned and never
keeps its connection. The cancel goes through ``pg_cancel_backend`` on a spare connection kept open for the
purpose: a cancel request of the protocol (``conn.cancel_safe()``, the fallback) makes the server start a
process first, which takes tens of milliseconds on a busy machine. A transaction cancelled mid-way is rolled back, and the task then sees
``trio.Cancelled``. ``statement_timeout`` is a backstop for queries nobody cancels.
"""

from __future__ import annotations

import collections
import contextlib
import queue
import select
import selectors
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, LiteralString, NoReturn, TypeAlias, TypeVar, final

import outcome
import psycopg
import psycopg.errors
import psycopg.pq
import psycopg.rows
import psycopg.sql
import psycopg_pool
import trio
from psycopg.abc import PQGen

import engine

from ._embedded import open_embedded_server
from ._errors import DatabaseClosedError, DatabaseUnavailableError, translate_error
from ._migrations import MIGRATIONS_DIR, apply_migrations, discover_migrations

__all__ = ["Database", "DatabaseStatistics", "Params", "Query", "open_database"]

T = TypeVar("T")

#: SQL text (a literal string) or a statement composed with :mod:`psycopg.sql`.
Query: TypeAlias = LiteralString | bytes | psycopg.sql.SQL | psycopg.sql.Composed
#: Query parameters: a sequence for ``%s`` placeholders, a mapping for ``%(name)s``.
Params: TypeAlias = Sequence[Any] | Mapping[str, Any] | None

_CANCEL_REQUEST_TIMEOUT: Final = 2.0
# A cancel request that reaches the server before the statement does is lost, so it is repeated until
# the worker is back: quickly at first (a worker starved of CPU may send its statement late), then slowly
# (each request costs the server a process) for a statement that takes long to notice it.
_FIRST_CANCEL_RETRY: Final = 0.002
_FAST_CANCEL_RETRY: Final = 0.02
_FAST_CANCEL_PERIOD: Final = 1.0
_SLOW_CANCEL_RETRY: Final = 0.25
# While the server is known to be down, a call waits at most this long for a connection.
_UNAVAILABLE_ACQUIRE_TIMEOUT: Final = 0.25
# A simple statement runs on the trio thread when the pool has a connection ready; the pool is asked
# with this tiny timeout, and when it has none the call goes to a worker thread.
_NOWAIT_ACQUIRE_TIMEOUT: Final = 0.0002
# After a cancellation on the trio thread, how long the server has to end the statement before the
# connection is dropped instead of going back to the pool.
_CANCEL_CLEANUP_LIMIT: Final = 5.0
# The values psycopg's generators yield (psycopg.waiting's Wait) and are sent (Ready).
_WAIT_R: Final = selectors.EVENT_READ
_WAIT_W: Final = selectors.EVENT_WRITE
# How often a wait for "readable or writable" polls for readability while it waits to write.
_RW_RECHECK: Final = 0.005


class _NotStarted(Exception):
    """The call was cancelled before its statement was sent."""


@dataclass(frozen=True, slots=True)
class DatabaseStatistics:
    """A snapshot of a :class:`Database`.

    Attributes:
        pool_size: connections the pool keeps (and call slots).
        connections: connections currently open (idle or in use).
        idle: connections idle in the pool.
        threads_in_use: calls holding a slot now (on the trio thread or in a worker thread).
        gate_waiting: queries waiting for admission through the priority gate.
        queries: calls completed (successfully or not).
        cancelled: calls ended by a trio cancellation.
        errors: calls that raised a database error.
        unavailable: True while the last call found the server unreachable and none succeeded since.
    """

    pool_size: int
    connections: int
    idle: int
    threads_in_use: int
    gate_waiting: int
    queries: int
    cancelled: int
    errors: int
    unavailable: bool


@final
class _Call(Generic[T]):
    """One query's trip to a worker thread and back.

    The worker and the canceller thread coordinate through plain attributes written before they are read
    on the other side (``conn`` / ``cancel_requested`` and ``finished`` / ``cancel_requested``): under the
    GIL, each side sees at least one of the two writes, so a cancel request is never lost and the canceller
    never touches a connection after the worker is done with its statements.
    """

    __slots__ = (
        "_body",
        "_canceller_running",
        "_db",
        "_outcome",
        "_raise_cancel",
        "_task",
        "_token",
        "_waiting",
        "cancel_requested",
        "canceller_exited",
        "conn",
        "done",
        "finished",
    )

    def __init__(
        self, db: Database, body: Callable[[psycopg.Connection[Any], _Call[T]], T]
    ) -> None:
        self._db = db
        self._body = body
        self._task = trio.lowlevel.current_task()
        self._token = trio.lowlevel.current_trio_token()
        self._waiting = False
        self._outcome: outcome.Outcome[T] | None = None
        self._canceller_running = False
        self._raise_cancel: Callable[[], object] | None = None
        # shared with the threads
        self.conn: psycopg.Connection[Any] | None = None
        self.cancel_requested = False
        self.finished = False
        self.done: threading.Event | None = None
        self.canceller_exited: threading.Event | None = None

    # -- worker thread ----------------------------------------------------------------------------

    def work(self) -> T:
        db = self._db
        timeout = _UNAVAILABLE_ACQUIRE_TIMEOUT if db._unavailable else db._acquire_timeout
        pool = db._pool
        try:
            conn = pool.getconn(timeout=min(timeout, db._acquire_timeout))
        except BaseException as exc:
            self.finish()
            if self.cancel_requested:
                raise _NotStarted from exc
            raise
        try:
            self.conn = conn
            if self.cancel_requested:
                raise _NotStarted
            return self._body(conn, self)
        finally:
            self.finish()
            pool.putconn(conn)

    def finish(self) -> None:
        """Called by the worker once its statements are done: stops the canceller before any cleanup
        (rollback, commit, return to the pool) can be hit by a late cancel request."""
        if self.finished:
            return
        self.finished = True
        if self.cancel_requested:
            assert self.done is not None and self.canceller_exited is not None
            self.done.set()
            self.canceller_exited.wait()

    # -- canceller thread -------------------------------------------------------------------------

    def cancel_loop(self) -> None:
        assert self.done is not None and self.canceller_exited is not None
        delay = _FIRST_CANCEL_RETRY
        slow_from = time.monotonic() + _FAST_CANCEL_PERIOD
        try:
            while not self.finished:
                conn = self.conn
                if conn is not None:
                    self._db._cancel_channel.cancel(conn)
                if self.done.wait(delay):
                    break
                cap = _FAST_CANCEL_RETRY if time.monotonic() < slow_from else _SLOW_CANCEL_RETRY
                delay = min(delay * 2, cap)
        finally:
            self.canceller_exited.set()

    def _deliver_cancel_loop(self, result: outcome.Outcome[None]) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._on_canceller_done, result)

    # -- trio thread ------------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._waiting:
            self._waiting = False
            trio.lowlevel.reschedule(self._task)

    def on_work_done(self, result: outcome.Outcome[T]) -> None:
        self._outcome = result
        self._wake()

    def _on_canceller_done(self, result: outcome.Outcome[None]) -> None:
        self._canceller_running = False
        self._wake()

    def _abort(self, raise_cancel: Callable[[], object]) -> trio.lowlevel.Abort:
        if not self.cancel_requested:
            self._raise_cancel = raise_cancel
            self.done = threading.Event()
            self.canceller_exited = threading.Event()
            self.cancel_requested = True
            self._canceller_running = True
            trio.lowlevel.start_thread_soon(
                self.cancel_loop, self._deliver_cancel_loop, name="scribe-pg-cancel"
            )
        return trio.lowlevel.Abort.FAILED

    async def run(self) -> outcome.Outcome[T]:
        self._db._workers.submit(self)
        while self._outcome is None or self._canceller_running:
            self._waiting = True
            await trio.lowlevel.wait_task_rescheduled(self._abort)
        return self._outcome

    def raise_cancel(self) -> NoReturn:
        """Raise what trio handed the abort function: ``trio.Cancelled`` (or KeyboardInterrupt)."""
        assert self._raise_cancel is not None
        self._raise_cancel()
        raise AssertionError("trio's raise_cancel returned")  # pragma: no cover


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
class _Driver:
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


_STOP: Final = None


@final
class _Workers:
    """The worker threads: one per pooled connection, started with the database and kept for its life.

    Calls are handed over through one ``queue.SimpleQueue``; the trio side never submits more calls than
    there are threads (``Database._threads``), so a call never waits for a thread. Results go back
    through one ``run_sync_soon`` per batch: a worker appends the finished call to a deque and wakes trio
    only when no wakeup is pending yet, so results that finish while trio is busy cost no extra wakeup
    (and no extra contention for the interpreter lock). A long-lived thread per connection costs less per
    call than a thread cache's hand-over and keeps the connection's thread warm.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: queue.SimpleQueue[_Call[Any] | None] = queue.SimpleQueue()
        self._done: collections.deque[tuple[_Call[Any], outcome.Outcome[Any]]] = collections.deque()
        self._wakeup_pending = False
        self._threads: list[threading.Thread] = []
        self._token: trio.lowlevel.TrioToken | None = None

    def start(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        for i in range(self._size):
            thread = threading.Thread(target=self._run, name=f"scribe-pg-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, call: _Call[Any]) -> None:
        self._jobs.put(call)

    def stop(self, timeout: float) -> None:
        """Let every thread finish its queued calls and exit; wait for them (at most ``timeout``)."""
        for _ in self._threads:
            self._jobs.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def _run(self) -> None:
        jobs = self._jobs
        done = self._done
        while (call := jobs.get()) is not None:
            done.append((call, outcome.capture(call.work)))
            del call
            if not self._wakeup_pending:
                self._wakeup_pending = True
                assert self._token is not None
                with contextlib.suppress(trio.RunFinishedError):
                    self._token.run_sync_soon(self._deliver)

    def _deliver(self) -> None:
        # Cleared before draining: a result appended after this line either is drained below or
        # schedules a new wakeup.
        self._wakeup_pending = False
        done = self._done
        while done:
            call, result = done.popleft()
            call.on_work_done(result)


@final
class _CancelChannel:
    """A spare connection that cancels the pool's statements with ``pg_cancel_backend``: one round trip
    on an open connection. When it cannot be used, the statement's own connection sends a protocol cancel
    request (``cancel_safe``). Used from canceller threads; one cancel at a time."""

    def __init__(self, url: str, kwargs: Mapping[str, Any]) -> None:
        self._url = url
        self._kwargs = {
            **kwargs,
            "autocommit": True,
            "application_name": "scribe-cancel",
            "connect_timeout": 2,
        }
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False

    def open(self) -> None:
        with self._lock, contextlib.suppress(psycopg.Error):
            self._conn = psycopg.connect(self._url, **self._kwargs)

    def cancel(self, target: psycopg.Connection[Any]) -> None:
        # Failures need no handling: a server that cannot take a cancel has dropped the statement's
        # connection too, and the worker fails on its own.
        with self._lock:
            if not self._closed:
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = psycopg.connect(self._url, **self._kwargs)
                    self._conn.execute("SELECT pg_cancel_backend(%s)", (target.info.backend_pid,))
                    return
                except psycopg.Error:
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
        with contextlib.suppress(psycopg.Error, OSError):
            target.cancel_safe(timeout=_CANCEL_REQUEST_TIMEOUT)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None


_CANCEL_ERRORS: Final = (
    _NotStarted,
    psycopg.errors.QueryCanceled,
    psycopg.errors.InFailedSqlTransaction,
)


def _quick_check(conn: psycopg.Connection[Any]) -> None:
    """Pool ``check`` callback: an idle connection whose socket is readable has either been closed by
    the server or holds a notice; only then pay for a round trip to find out."""
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("connection is closed")
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        psycopg_pool.ConnectionPool.check_connection(conn)


@final
@dataclass(frozen=True, slots=True)
class _Simple(Generic[T]):
    """An autocommit statement that can run on the trio thread, and how to read its result."""

    sql: Query
    params: Params
    row_factory: psycopg.rows.RowFactory[Any] | None
    extract: Callable[[psycopg.Cursor[Any]], T]


@final
class Database:
    """A PostgreSQL database reached through a pool of connections.

    Get one from :func:`open_database`. Every call is admitted through the priority gate under the
    current session's priority, runs with one pooled connection (a simple statement on the trio thread, a
    transaction in a worker thread), and raises typed errors (subclasses of :class:`DatabaseError`)
    chained to the driver's.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int,
        gate: engine.PriorityLimiter,
        statement_timeout: float | None,
        acquire_timeout: float,
        connect_timeout: float,
        application_name: str,
    ) -> None:
        self._url = url
        self._pool_size = pool_size
        self._gate = gate
        self._threads = trio.CapacityLimiter(pool_size)
        self._workers = _Workers(pool_size)
        self._acquire_timeout = acquire_timeout
        self._connect_timeout = connect_timeout
        self._statement_timeout = statement_timeout
        self._connect_kwargs: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": max(1, round(connect_timeout)),
            "application_name": application_name,
        }
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = (
            psycopg_pool.ConnectionPool(
                url,
                min_size=pool_size,
                max_size=pool_size,
                open=False,
                kwargs=self._connect_kwargs,
                configure=self._configure,
                check=_quick_check,
                timeout=acquire_timeout,
                reconnect_timeout=max(2.0, connect_timeout),
                name="scribe",
                num_workers=2,
            )
        )
        self._cancel_channel = _CancelChannel(url, self._connect_kwargs)
        self._closed = False
        self._unavailable = False
        self._queries = 0
        self._cancelled = 0
        self._errors = 0

    # -- public API -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The libpq URL this database connects to."""
        return self._url

    @property
    def gate(self) -> engine.PriorityLimiter:
        """The priority gate every call is admitted through."""
        return self._gate

    async def execute(self, sql: Query, params: Params = None) -> int:
        """Run one statement and return its row count (-1 when the statement has none).

        Cancellation: the statement is cancelled on the server and the call waits (shielded, at most
        a few seconds) until the connection is free again, then raises ``trio.Cancelled``; a statement
        that completed before the cancel arrived is kept (committed), and in a worker thread its row
        count is returned.
        """

        def body(conn: psycopg.Connection[Any], call: _Call[int]) -> int:
            cur = conn.execute(sql, params)
            call.finish()
            return cur.rowcount

        def here(cur: psycopg.Cursor[Any]) -> int:
            return cur.rowcount

        return await self._call(body, _Simple(sql, params, None, here))

    async def fetch(self, sql: Query, params: Params = None) -> list[dict[str, Any]]:
        """Run a query and return every row as a dict keyed by column name.

        Cancellation: as :meth:`execute`.
        """

        def body(
            conn: psycopg.Connection[Any], call: _Call[list[dict[str, Any]]]
        ) -> list[dict[str, Any]]:
            with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                cur.execute(sql, params)
                rows = cur.fetchall() if cur.description is not None else []
            call.finish()
            return rows

        def here(cur: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
            return cur.fetchall() if cur.description is not None else []

        return await self._call(body, _Simple(sql, params, psycopg.rows.dict_row, here))

    async def fetchrow(self, sql: Query, params: Params = None) -> dict[str, Any] | None:
        """Run a query and return its first row as a dict, or None when it returns no row.

        Cancellation: as :meth:`execute`.
        """

        def body(
            conn: psycopg.Connection[Any], call: _Call[dict[str, Any] | None]
        ) -> dict[str, Any] | None:
            with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                cur.execute(sql, params)
                row = cur.fetchone() if cur.description is not None else None
            call.finish()
            return row

        def here(cur: psycopg.Cursor[Any]) -> dict[str, Any] | None:
            row: dict[str, Any] | None = cur.fetchone() if cur.description is not None else None
            return row

        return await self._call(body, _Simple(sql, params, psycopg.rows.dict_row, here))

    async def fetchval(self, sql: Query, params: Params = None) -> Any:
        """Run a query and return the first column of its first row (None when there is no row).

        Cancellation: as :meth:`execute`.
        """

        def body(conn: psycopg.Connection[Any], call: _Call[Any]) -> Any:
            cur = conn.execute(sql, params)
            row = cur.fetchone() if cur.description is not None else None
            call.finish()
            return None if row is None else row[0]

        def here(cur: psycopg.Cursor[Any]) -> Any:
            row = cur.fetchone() if cur.description is not None else None
            return None if row is None else row[0]

        return await self._call(body, _Simple(sql, params, None, here))

    async def run_sync(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``fn(conn)`` in a worker thread inside one transaction and return its result.

        The transaction commits when ``fn`` returns and rolls back when it raises. Driver errors raised by
        ``fn`` come out as the adapter's typed errors; other exceptions pass through unchanged.

        Cancellation: the statement running at that moment is cancelled on the server, the transaction
        is rolled back (nothing of it is committed) and the call raises ``trio.Cancelled`` once the
        worker is back. If ``fn`` had already returned, its transaction commits and the result is
        returned.
        """

        def body(conn: psycopg.Connection[Any], call: _Call[T]) -> T:
            with conn.transaction():
                try:
                    return fn(conn)
                finally:
                    call.finish()

        return await self._call(body)

    def statistics(self) -> DatabaseStatistics:
        """A snapshot of the pool, the threads and the call counters."""
        stats = self._pool.get_stats()
        return DatabaseStatistics(
            pool_size=self._pool_size,
            connections=stats.get("pool_size", 0),
            idle=stats.get("pool_available", 0),
            threads_in_use=self._threads.borrowed_tokens,
            gate_waiting=self._gate.statistics().waiting,
            queries=self._queries,
            cancelled=self._cancelled,
            errors=self._errors,
            unavailable=self._unavailable,
        )

    # -- internals --------------------------------------------------------------------------------

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        if self._statement_timeout is not None:
            ms = max(1, round(self._statement_timeout * 1000))
            conn.execute(f"SET statement_timeout = {ms:d}".encode())

    async def _call(
        self,
        body: Callable[[psycopg.Connection[Any], _Call[T]], T],
        simple: _Simple[T] | None = None,
    ) -> T:
        if self._closed:
            raise DatabaseClosedError("the database was used after its open_database block exited")
        call: _Call[T] | None = None
        async with engine.admit(self._gate), self._threads:
            conn = None if simple is None else self._getconn_nowait()
            if conn is not None:
                assert simple is not None
                result = await self._run_here(conn, simple)
            else:
                call = _Call(self, body)
                result = await call.run()
        self._queries += 1
        if isinstance(result, outcome.Value):
            self._unavailable = False
            value: T = result.value
            return value
        assert isinstance(result, outcome.Error)
        exc = result.error
        if call is not None and call.cancel_requested and isinstance(exc, _CANCEL_ERRORS):
            self._cancelled += 1
            call.raise_cancel()
        typed = translate_error(exc)
        if typed is None:
            return result.unwrap()  # not a driver error: the caller's own exception, unchanged
        self._errors += 1
        if isinstance(typed, DatabaseUnavailableError):
            self._unavailable = True
        raise typed from exc

    def _getconn_nowait(self) -> psycopg.Connection[Any] | None:
        """A pooled connection ready now, or None (the server is known to be down, or the pool is
        replacing connections): the call then waits for one in a worker thread."""
        if self._unavailable:
            return None
        try:
            return self._pool.getconn(timeout=_NOWAIT_ACQUIRE_TIMEOUT)
        except psycopg_pool.PoolTimeout:
            return None

    async def _run_here(
        self, conn: psycopg.Connection[Any], simple: _Simple[T]
    ) -> outcome.Outcome[T]:
        """Run one autocommit statement on the trio thread, driving psycopg's non-blocking generator.

        On cancellation the statement is cancelled on the server and the generator is carried on to its
        end under a shielded, time-limited scope; the connection goes back to the pool only when it came
        out of that clean, and the call raises ``trio.Cancelled``.
        """
        keep = True
        try:
            if simple.row_factory is None:
                cur: psycopg.Cursor[Any] = conn.cursor()
            else:
                cur = conn.cursor(row_factory=simple.row_factory)
            driver = _Driver(cur._execute_gen(simple.sql, simple.params), conn.pgconn.socket)
            try:
                await driver.run()
            except Exception as exc:
                return outcome.Error(exc)
            except BaseException:
                self._queries += 1
                self._cancelled += 1
                keep = await self._finish_cancelled(conn, driver)
                raise
            return outcome.capture(simple.extract, cur)
        finally:
            self._putconn_here(conn, keep)

    async def _finish_cancelled(self, conn: psycopg.Connection[Any], driver: _Driver) -> bool:
        """Cancel the statement on the server and carry the generator on to its end; True when the
        connection came out idle and usable."""
        with trio.CancelScope(shield=True), trio.move_on_after(_CANCEL_CLEANUP_LIMIT):
            delay = _FIRST_CANCEL_RETRY
            slow_from = trio.current_time() + _FAST_CANCEL_PERIOD
            # A cancel that reaches the server before the statement is lost: repeat it until the end.
            while not driver.done:
                await trio.to_thread.run_sync(self._cancel_channel.cancel, conn)
                with trio.move_on_after(delay):
                    with contextlib.suppress(psycopg.Error):  # the cancelled statement's own error
                        await driver.run()
                cap = _FAST_CANCEL_RETRY if trio.current_time() < slow_from else _SLOW_CANCEL_RETRY
                delay = min(delay * 2, cap)
        return (
            driver.done
            and not conn.broken
            and conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
        )

    def _putconn_here(self, conn: psycopg.Connection[Any], keep: bool) -> None:
        if not keep and not conn.closed:
            with contextlib.suppress(OSError, psycopg.Error):
                trio.lowlevel.notify_closing(conn.pgconn.socket)
            conn.close()
        self._pool.putconn(conn)

    async def _open(self) -> None:
        def probe() -> None:
            # One direct connection first: it fails with the server's own words (no such database,
            # authentication failed, no server on that socket) rather than a pool timeout.
            with psycopg.connect(self._url, **self._connect_kwargs):
                pass
            self._pool.open(wait=True, timeout=self._connect_timeout + 5.0)
            self._cancel_channel.open()

        try:
            await trio.to_thread.run_sync(probe)
            self._workers.start()
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            typed = translate_error(exc)
            assert typed is not None
            if not isinstance(typed, DatabaseUnavailableError):
                typed = DatabaseUnavailableError(f"cannot connect to the database: {typed}")
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(self._pool.close, 1.0)
                await trio.to_thread.run_sync(self._cancel_channel.close)
            raise typed from exc

    async def _aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(self._workers.stop, 5.0)
            await trio.to_thread.run_sync(self._pool.close, 5.0)
            await trio.to_thread.run_sync(self._cancel_channel.close)


@contextlib.asynccontextmanager
async def open_database(
    url: str | None = None,
    *,
    home: Path | None = None,
    pool_size: int = 4,
    gate: engine.PriorityLimiter | None = None,
    migrate: bool = True,
    statement_timeout: float | None = 300.0,
    acquire_timeout: float = 5.0,
    connect_timeout: float = 5.0,
    application_name: str = "scribe",
    migrations_dir: Path = MIGRATIONS_DIR,
) -> AsyncIterator[Database]:
    """Connect to PostgreSQL for the duration of the block.

    Args:
        url: a libpq URL. None: the embedded server under ``home`` (started for the block, stopped
            after it unless another process still uses it). The application resolves both from its
            configuration (:func:`engine.app.load_config`: flags, ``$SCRIBE_DATABASE_URL``, the
            TOML file).
        home: the engine home for the embedded server (needed when ``url`` is None).
        pool_size: pooled connections, which is also the number of worker-thread slots.
        gate: the priority gate queries are admitted through (default: a private one of ``pool_size``).
        migrate: apply pending migrations before the block starts.
        statement_timeout: seconds after which the server cancels any statement (None: no limit).
        acquire_timeout: the longest a call waits for a connection before failing with
            :class:`DatabaseUnavailableError` (while the server is known to be down: a quarter second).
        connect_timeout: the longest one connection attempt may take.
        application_name: shown in ``pg_stat_activity``.
        migrations_dir: where the migration files are.

    Raises:
        DatabaseUnavailableError: the server cannot be reached.
        EmbeddedServerError: the embedded server cannot start (the message says why).
        MigrationError, SchemaTooNewError: the schema cannot be brought up to date.

    Cancellation: opening waits for its worker threads (connecting, migrating in one transaction that
    a cancellation rolls back); closing is shielded and bounded by the pool's close timeout.
    """
    if pool_size < 1:
        raise engine.InvalidArgumentError(f"pool_size must be >= 1, not {pool_size!r}")
    if acquire_timeout <= 0 or connect_timeout <= 0:
        raise engine.InvalidArgumentError("acquire_timeout and connect_timeout must be positive")
    if statement_timeout is not None and statement_timeout <= 0:
        raise engine.InvalidArgumentError("statement_timeout must be positive or None")
    if url is None and home is None:
        raise engine.InvalidArgumentError("no database URL and no home for the embedded server")
    migrations = discover_migrations(migrations_dir) if migrate else ()
    async with contextlib.AsyncExitStack() as stack:
        if url is None:
            if home is None:  # refused above, before any work
                raise engine.InvalidArgumentError("no home for the embedded server")
            server = await stack.enter_async_context(open_embedded_server(home))
            url = server.url("scribe")
        db = Database(
            url,
            pool_size=pool_size,
            gate=gate if gate is not None else engine.PriorityLimiter(pool_size, name="db"),
            statement_timeout=statement_timeout,
            acquire_timeout=acquire_timeout,
            connect_timeout=connect_timeout,
            application_name=application_name,
        )
        await db._open()
        stack.push_async_callback(db._aclose)
        if migrations:
            await db.run_sync(lambda conn: apply_migrations(conn, migrations))
        yield db
