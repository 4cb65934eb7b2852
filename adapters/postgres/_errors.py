"""Typed errors of the PostgreSQL adapter, and its one error table (:data:`DRIVER_ERRORS`).

A trio cancellation is never mapped: it surfaces as ``trio.Cancelled``. :class:`QueryCancelledError` is for
server-side cancellations nobody in this process asked for (``statement_timeout``, an operator's
``pg_cancel_backend``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Final

import psycopg
import psycopg.errors
import psycopg_pool

import engine

from .._errors import ErrorTable, map_exceptions, mapped_exception

__all__ = [
    "DRIVER_ERRORS",
    "DatabaseClosedError",
    "DatabaseError",
    "DatabaseUnavailableError",
    "EmbeddedServerError",
    "IntegrityError",
    "MigrationError",
    "QueryCancelledError",
    "QueryError",
    "SchemaTooNewError",
    "TransactionConflictError",
    "driver_errors",
    "translate_error",
]


class DatabaseError(engine.ScribeError):
    """Root of the PostgreSQL adapter's errors. The driver's error, if any, is the ``__cause__``.

    Attributes:
        sqlstate: the server's five-character SQLSTATE code, or None when the error came from the client.
    """

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class DatabaseUnavailableError(DatabaseError):
    """The server cannot be reached, went away mid-query, or is shutting down.

    Calls fail with this quickly while the server is down; the pool reconnects by itself when it returns.
    """


class DatabaseClosedError(DatabaseError):
    """The database handle was used after its ``open_database`` block exited."""


class QueryCancelledError(DatabaseError):
    """The server cancelled the query for a reason outside this process's control, such as
    ``statement_timeout`` or an operator's ``pg_cancel_backend``. A trio cancellation never becomes this."""


class IntegrityError(DatabaseError):
    """A constraint was violated (unique, foreign key, check, not null, exclusion).

    Attributes:
        constraint: the violated constraint's name when the server reported it.
    """

    def __init__(
        self, message: str, *, sqlstate: str | None = None, constraint: str | None = None
    ) -> None:
        super().__init__(message, sqlstate=sqlstate)
        self.constraint = constraint


class QueryError(DatabaseError):
    """The statement itself is wrong: bad syntax, an unknown table or column, bad data for a type, or a
    missing privilege."""


class TransactionConflictError(DatabaseError):
    """The transaction lost a race with another one (serialization failure, deadlock, lock timeout) and
    was rolled back; running it again may succeed."""


class MigrationError(DatabaseError):
    """A schema migration is malformed (bad file name, duplicate version) or failed to apply."""


class SchemaTooNewError(MigrationError):
    """The database holds schema versions this code does not know: it was migrated by a newer release.

    Attributes:
        unknown_versions: the applied versions missing from this code's migrations, ascending.
    """

    def __init__(self, message: str, *, unknown_versions: tuple[int, ...]) -> None:
        super().__init__(message)
        self.unknown_versions = unknown_versions


class EmbeddedServerError(DatabaseError):
    """The embedded PostgreSQL server could not be initialised, started or stopped.

    Attributes:
        log_tail: the last lines of the server's log (may be empty), also part of the message.
    """

    def __init__(self, message: str, *, log_tail: str = "") -> None:
        text = message if not log_tail else f"{message}\n--- server log (tail) ---\n{log_tail}"
        super().__init__(text)
        self.log_tail = log_tail


_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")


def _message(exc: psycopg.Error) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


def _pool_closed(exc: psycopg_pool.PoolClosed) -> DatabaseError:
    return DatabaseClosedError(f"connection pool is closed: {exc}")


def _pool_timeout(exc: psycopg_pool.PoolTimeout) -> DatabaseError:
    return DatabaseUnavailableError(f"no database connection available: {exc}")


def _server_cancelled(exc: psycopg.errors.QueryCanceled) -> DatabaseError:
    return QueryCancelledError(
        f"query cancelled by the server: {_message(exc)}", sqlstate=exc.sqlstate
    )


def _integrity(exc: psycopg.IntegrityError) -> DatabaseError:
    constraint = exc.diag.constraint_name if exc.diag is not None else None
    return IntegrityError(_message(exc), sqlstate=exc.sqlstate, constraint=constraint)


def _conflict(exc: psycopg.Error) -> DatabaseError:
    return TransactionConflictError(_message(exc), sqlstate=exc.sqlstate)


def _query(exc: psycopg.Error) -> DatabaseError:
    return QueryError(_message(exc), sqlstate=exc.sqlstate)


def _unavailable(exc: psycopg.Error) -> DatabaseError:
    return DatabaseUnavailableError(f"database unavailable: {_message(exc)}", sqlstate=exc.sqlstate)


def _operational(exc: psycopg.OperationalError) -> DatabaseError:
    sqlstate = exc.sqlstate
    if sqlstate is None or sqlstate.startswith(_UNAVAILABLE_STATES):
        return _unavailable(exc)
    return DatabaseError(_message(exc), sqlstate=sqlstate)


def _other(exc: psycopg.Error) -> DatabaseError:
    return DatabaseError(_message(exc), sqlstate=exc.sqlstate)


#: Driver error -> typed error (first match wins).
DRIVER_ERRORS: Final[ErrorTable] = {
    psycopg_pool.PoolClosed: _pool_closed,
    psycopg_pool.PoolTimeout: _pool_timeout,
    psycopg.errors.QueryCanceled: _server_cancelled,
    psycopg.IntegrityError: _integrity,
    psycopg.errors.TransactionRollback: _conflict,
    # psycopg does not derive these two from TransactionRollback (class 40) though they are in it.
    psycopg.errors.SerializationFailure: _conflict,
    psycopg.errors.DeadlockDetected: _conflict,
    psycopg.errors.LockNotAvailable: _conflict,
    psycopg.ProgrammingError: _query,
    psycopg.DataError: _query,
    psycopg.NotSupportedError: _query,
    psycopg.InterfaceError: _unavailable,
    psycopg.OperationalError: _operational,
    psycopg.Error: _other,
}


def translate_error(exc: BaseException) -> DatabaseError | None:
    """Return the typed error :data:`DRIVER_ERRORS` gives for a driver error, or None when ``exc`` is
    not a driver error (a ``trio.Cancelled`` never is).

    The caller raises the result ``from exc`` so the driver's error stays available as ``__cause__``.
    """
    typed = mapped_exception(DRIVER_ERRORS, exc)
    assert typed is None or isinstance(typed, DatabaseError)
    return typed


def driver_errors() -> AbstractContextManager[None]:
    """Translate driver errors raised in the block through :data:`DRIVER_ERRORS`.

    Cancellation: never mapped; it passes through.
    """
    return map_exceptions(DRIVER_ERRORS)
