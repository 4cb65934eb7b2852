"""A database ping on its own connection: ``SELECT 1`` in a worker thread, for a :class:`engine.Probe`.

The ping never waits for the pool or the priority gate (a busy pool is not a down server). Its thread
is the one worker a caller may leave behind: when a ping is cancelled (its probe's timeout), the
thread finishes on its own (bounded by the connect timeout) and closes the connection it used; no
second ping starts while it runs, so at most one such thread exists.
"""

from __future__ import annotations

import threading
from typing import Any, Final, final

import psycopg
import trio

from ._errors import DatabaseUnavailableError

__all__ = ["DatabasePing"]

_CONNECT_TIMEOUT: Final = 2


@final
class DatabasePing:
    """``await ping()`` returns when the server answers ``SELECT 1`` and raises
    :class:`DatabaseUnavailableError` when it does not.

    Args:
        url: the libpq URL of the database.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._busy = threading.Lock()
        self._closed = False

    def _ping_sync(self) -> None:
        if not self._busy.acquire(blocking=False):
            raise DatabaseUnavailableError("the last ping has not come back")
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = psycopg.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=_CONNECT_TIMEOUT,
                    application_name="scribe-ping",
                )
            self._conn.execute("SELECT 1")
        except psycopg.Error as exc:
            self._drop()
            raise DatabaseUnavailableError(f"the database does not answer: {exc}") from exc
        finally:
            if self._closed:
                self._drop()
            self._busy.release()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def ping(self) -> None:
        """One ``SELECT 1``.

        Raises:
            DatabaseUnavailableError: no answer (or a ping left running by a cancelled one).

        Cancellation: returns at once; the thread ends on its own (see the module).
        """
        if self._closed:
            raise DatabaseUnavailableError("the ping is closed")
        await trio.to_thread.run_sync(self._ping_sync, abandon_on_cancel=True)

    def close(self) -> None:
        """Close the connection (a ping still running closes it when it ends)."""
        self._closed = True
        if self._busy.acquire(blocking=False):
            try:
                self._drop()
            finally:
                self._busy.release()
