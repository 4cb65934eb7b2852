"""Typed errors of the PostgreSQL adapter, and the one place where driver errors are translated.

A trio cancellation is never mapped: it surfaces as ``trio.Cancelled``. :class:`QueryCancelledError` is for
server-side cancellations nobody in this process asked for (``statement_timeout``, an operator's
``pg_cancel_backend``).
"""

from __future__ import annotations

import psycopg
import psycopg.errors
import psycopg_pool

import engine

__all__ = [
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


def translate_error(exc: BaseException) -> DatabaseError | None:
    """Return the typed error for a driver error, or None when ``exc`` is not a driver error.

    The caller raises the result ``from exc`` so the driver's error stays available as ``__cause__``.
    """
    if isinstance(exc, psycopg_pool.PoolClosed):
        return DatabaseClosedError(f"connection pool is closed: {exc}")
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return DatabaseUnavailableError(f"no database connection available: {exc}")
    if not isinstance(exc, psycopg.Error):
        return None
    sqlstate = exc.sqlstate
    message = _message(exc)
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return QueryCancelledError(f"query cancelled by the server: {message}", sqlstate=sqlstate)
    if isinstance(exc, psycopg.IntegrityError):
        constraint = exc.diag.constraint_name if exc.diag is not None else None
        return IntegrityError(message, sqlstate=sqlstate, constraint=constraint)
    if isinstance(exc, psycopg.errors.TransactionRollback | psycopg.errors.LockNotAvailable):
        return TransactionConflictError(message, sqlstate=sqlstate)
    if isinstance(exc, psycopg.ProgrammingError | psycopg.DataError | psycopg.NotSupportedError):
        return QueryError(message, sqlstate=sqlstate)
    if isinstance(exc, psycopg.InterfaceError) or (
        isinstance(exc, psycopg.OperationalError)
        and (sqlstate is None or sqlstate.startswith(_UNAVAILABLE_STATES))
    ):
        return DatabaseUnavailableError(f"database unavailable: {message}", sqlstate=sqlstate)
    return DatabaseError(message, sqlstate=sqlstate)


def _message(exc: psycopg.Error) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
