"""PostgreSQL from trio: the :class:`Database`, psycopg's sync connection pool behind a priority gate.

psycopg 3's async API runs on asyncio only, so a call takes one of two paths. A simple statement
(``execute``, ``fetch``, ``fetchrow``, ``fetchval``: autocommit) takes a pooled connection that is ready at
once and runs on the trio thread, its non-blocking generator driven on the connection's socket
(:mod:`._driver`): no thread hand-over and no contention for the interpreter lock. A ``run_sync``
transaction, and any statement while the pool has no connection ready (the server is down, connections
are being replaced), runs in a worker thread holding one pooled connection instead (:mod:`._workers`,
:mod:`._worker_call`). There is one slot per pooled connection, and every query is first admitted through
a :class:`engine.PriorityLimiter` under the calling session's priority, so a HIGH session's query
overtakes the queued LOW ones.

On either path a cancelled statement is cancelled on the server through the cancel channel
(:mod:`._cancel`), and the call waits until the connection is free again: a thread is never abandoned and
never keeps its connection; a transaction cancelled mid-way is rolled back, and the task then sees
``trio.Cancelled``. ``statement_timeout`` is a backstop for queries nobody cancels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final, TypeVar, final

import outcome
import psycopg
import psycopg.pq
import psycopg.rows
import psycopg.sql
import psycopg_pool
import trio

import engine

from ._cancel import CancelChannel
from ._database_statistics import DatabaseStatistics
from ._driver import Params, Query, SimpleStatement, run_simple
from ._embedded import EmbeddedServer
from ._errors import DatabaseClosedError, DatabaseUnavailableError, translate_error
from ._pool import connect_kwargs, new_pool
from ._worker_call import CANCEL_ERRORS, WorkerCall
from ._workers import Workers

__all__ = ["Database"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

# A simple statement runs on the trio thread when the pool has a connection ready; the pool is asked
# with this tiny timeout, and when it has none the call goes to a worker thread.
_NOWAIT_ACQUIRE_TIMEOUT: Final = 0.0002


@final
class Database(metaclass=engine.NoPublicConstructor):
    """A PostgreSQL database reached through a pool of connections.

    Get one from :func:`open_database` (:mod:`._open_database`). Every call is admitted through the priority gate under the
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
        self._workers = Workers(pool_size)
        self._acquire_timeout = acquire_timeout
        self._connect_timeout = connect_timeout
        self._statement_timeout = statement_timeout
        self._connect_kwargs = connect_kwargs(
            connect_timeout=connect_timeout, application_name=application_name
        )
        self._pool = new_pool(
            url,
            size=pool_size,
            kwargs=self._connect_kwargs,
            configure=self._configure,
            acquire_timeout=acquire_timeout,
            connect_timeout=connect_timeout,
        )
        self._cancel_channel = CancelChannel(url, self._connect_kwargs)
        self._closed = False
        self._unavailable = False
        #: The embedded server this database runs on (None: a configured URL).
        self.embedded: EmbeddedServer | None = None
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

        def body(conn: psycopg.Connection[Any], call: WorkerCall[int]) -> int:
            cur = conn.execute(sql, params)
            call.finish()
            return cur.rowcount

        def here(cur: psycopg.Cursor[Any]) -> int:
            return cur.rowcount

        return await self._call(body, SimpleStatement(sql, params, None, here))

    async def execute_unbounded(self, sql: Query) -> None:
        """Run one maintenance statement (an index build) outside any transaction and without the
        statement timeout, which is set back on the connection afterwards.

        Cancellation: as :meth:`execute` (the statement is cancelled on the server).
        """

        def body(conn: psycopg.Connection[Any], call: WorkerCall[None]) -> None:
            try:
                conn.execute("SET statement_timeout = 0")
                conn.execute(sql)
            finally:
                try:
                    conn.execute("RESET statement_timeout")
                    self._configure(conn)
                finally:
                    call.finish()

        await self._call(body)

    async def fetch(self, sql: Query, params: Params = None) -> list[dict[str, Any]]:
        """Run a query and return every row as a dict keyed by column name.

        Cancellation: as :meth:`execute`.
        """

        def body(
            conn: psycopg.Connection[Any], call: WorkerCall[list[dict[str, Any]]]
        ) -> list[dict[str, Any]]:
            with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                cur.execute(sql, params)
                rows = cur.fetchall() if cur.description is not None else []
            call.finish()
            return rows

        def here(cur: psycopg.Cursor[Any]) -> list[dict[str, Any]]:
            return cur.fetchall() if cur.description is not None else []

        return await self._call(body, SimpleStatement(sql, params, psycopg.rows.dict_row, here))

    async def fetchrow(self, sql: Query, params: Params = None) -> dict[str, Any] | None:
        """Run a query and return its first row as a dict, or None when it returns no row.

        Cancellation: as :meth:`execute`.
        """

        def body(
            conn: psycopg.Connection[Any], call: WorkerCall[dict[str, Any] | None]
        ) -> dict[str, Any] | None:
            with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
                cur.execute(sql, params)
                row = cur.fetchone() if cur.description is not None else None
            call.finish()
            return row

        def here(cur: psycopg.Cursor[Any]) -> dict[str, Any] | None:
            row: dict[str, Any] | None = cur.fetchone() if cur.description is not None else None
            return row

        return await self._call(body, SimpleStatement(sql, params, psycopg.rows.dict_row, here))

    async def fetchval(self, sql: Query, params: Params = None) -> Any:
        """Run a query and return the first column of its first row (None when there is no row).

        Cancellation: as :meth:`execute`.
        """

        def body(conn: psycopg.Connection[Any], call: WorkerCall[Any]) -> Any:
            cur = conn.execute(sql, params)
            row = cur.fetchone() if cur.description is not None else None
            call.finish()
            return None if row is None else row[0]

        def here(cur: psycopg.Cursor[Any]) -> Any:
            row = cur.fetchone() if cur.description is not None else None
            return None if row is None else row[0]

        return await self._call(body, SimpleStatement(sql, params, None, here))

    async def run_sync(self, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``fn(conn)`` in a worker thread inside one transaction and return its result.

        The transaction commits when ``fn`` returns and rolls back when it raises. Driver errors raised by
        ``fn`` come out as the adapter's typed errors; other exceptions pass through unchanged.

        Cancellation: the statement running at that moment is cancelled on the server, the transaction
        is rolled back (nothing of it is committed) and the call raises ``trio.Cancelled`` once the
        worker is back. If ``fn`` had already returned, its transaction commits and the result is
        returned.
        """

        def body(conn: psycopg.Connection[Any], call: WorkerCall[T]) -> T:
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
            gate_waiting=self._gate.waiting,
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
        body: Callable[[psycopg.Connection[Any], WorkerCall[T]], T],
        simple: SimpleStatement[T] | None = None,
    ) -> T:
        if self._closed:
            raise DatabaseClosedError("the database was used after its open_database block exited")
        call: WorkerCall[T] | None = None
        async with engine.admit(self._gate), self._threads:
            conn = None if simple is None else self._getconn_nowait()
            if conn is not None:
                assert simple is not None
                result = await run_simple(
                    self._pool, conn, simple, self._cancel_channel, self._count_cancelled
                )
            else:
                call = WorkerCall(self, body)
                result = await call.run()
        self._queries += 1
        if isinstance(result, outcome.Value):
            if self._unavailable:
                _log.info("the database answers again")
            self._unavailable = False
            value: T = result.value
            return value
        assert isinstance(result, outcome.Error)
        exc = result.error
        if call is not None and call.cancel_requested and isinstance(exc, CANCEL_ERRORS):
            self._cancelled += 1
            call.raise_cancel()
        typed = translate_error(exc)
        if typed is None:
            return result.unwrap()  # not a driver error: the caller's own exception, unchanged
        self._errors += 1
        if isinstance(typed, DatabaseUnavailableError):
            if not self._unavailable:
                _log.warning("the database is unavailable: %s", typed)
            self._unavailable = True
        else:
            _log.debug("a statement failed: %s: %s", type(typed).__name__, typed)
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

    def _count_cancelled(self) -> None:
        self._queries += 1
        self._cancelled += 1

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
