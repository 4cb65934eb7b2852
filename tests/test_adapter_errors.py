"""Each adapter family translates foreign errors through one table: causes are kept, cancellation never mapped."""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import jwt
import orjson
import psycopg
import psycopg.errors
import psycopg_pool
import pytest
import trio
from trio_websocket import CloseReason, ConnectionClosed, ConnectionRejected

import adapters
import engine
from adapters._errors import ErrorTable, map_exceptions, mapped_exception
from adapters.feed._errors import FEED_ERRORS
from adapters.fs._errors import FS_ERRORS
from adapters.git._errors import git_errors
from adapters.postgres._errors import DRIVER_ERRORS

TABLES: dict[str, ErrorTable] = {
    "postgres": DRIVER_ERRORS,
    "fs": FS_ERRORS,
    "git": git_errors("git"),
    "feed": FEED_ERRORS,
}


def _not_json() -> orjson.JSONDecodeError:
    try:
        orjson.loads(b"{")
    except orjson.JSONDecodeError as exc:
        return exc
    raise AssertionError("orjson accepted a broken document")


def _bad_jwt() -> jwt.PyJWTError:
    try:
        jwt.decode("not-a-token", "k" * 32, algorithms=["HS256"])
    except jwt.PyJWTError as exc:
        return exc
    raise AssertionError("pyjwt accepted a broken token")


# (family, a foreign error, the typed error the family's table makes of it)
SAMPLES: list[tuple[str, Exception, type[Exception]]] = [
    ("postgres", psycopg_pool.PoolTimeout("no connection"), adapters.DatabaseUnavailableError),
    ("postgres", psycopg_pool.PoolClosed("closed"), adapters.DatabaseClosedError),
    ("postgres", psycopg.errors.QueryCanceled("timeout"), adapters.QueryCancelledError),
    ("postgres", psycopg.errors.UniqueViolation("dup"), adapters.IntegrityError),
    ("postgres", psycopg.errors.DeadlockDetected("deadlock"), adapters.TransactionConflictError),
    ("postgres", psycopg.errors.SerializationFailure("race"), adapters.TransactionConflictError),
    ("postgres", psycopg.errors.LockNotAvailable("nowait"), adapters.TransactionConflictError),
    ("postgres", psycopg.errors.UndefinedTable("no table"), adapters.QueryError),
    ("postgres", psycopg.OperationalError("server gone"), adapters.DatabaseUnavailableError),
    ("postgres", psycopg.errors.DiskFull("full"), adapters.DatabaseError),
    ("fs", FileNotFoundError(errno.ENOENT, "gone", "x"), engine.NoSuchFileError),
    ("fs", PermissionError(errno.EACCES, "no", "x"), engine.FileAccessError),
    ("git", FileNotFoundError(errno.ENOENT, "gone", "git"), engine.GitNotFoundError),
    ("git", PermissionError(errno.EACCES, "no", "git"), engine.GitNotFoundError),
    ("feed", ConnectionClosed(CloseReason(1001, "bye")), adapters.FeedConnectionError),
    ("feed", ConnectionRejected(403, (), b"no"), adapters.FeedConnectionError),
    ("feed", trio.TooSlowError(), adapters.FeedConnectionError),
    ("feed", ConnectionRefusedError(errno.ECONNREFUSED, "refused"), adapters.FeedConnectionError),
    ("feed", _not_json(), adapters.FeedClientError),
    ("feed", _bad_jwt(), adapters.FeedTokenInvalidError),
]


@pytest.mark.parametrize(
    ("family", "foreign", "typed"),
    SAMPLES,
    ids=[f"{f}-{type(e).__name__}" for f, e, _ in SAMPLES],
)
def test_the_table_raises_the_typed_error_from_the_foreign_one(
    family: str, foreign: Exception, typed: type[Exception]
) -> None:
    with pytest.raises(typed) as raised:
        with map_exceptions(TABLES[family]):
            raise foreign
    assert raised.value.__cause__ is foreign
    assert type(raised.value) is not type(foreign)


@pytest.mark.parametrize("family", TABLES)
async def test_cancellation_is_never_mapped(family: str) -> None:
    with trio.CancelScope() as scope:
        scope.cancel()
        with map_exceptions(TABLES[family]):
            await trio.lowlevel.checkpoint()
    assert scope.cancelled_caught  # trio.Cancelled came out of the table unchanged


@pytest.mark.parametrize("family", TABLES)
def test_base_exceptions_and_unknown_errors_pass_through(family: str) -> None:
    with pytest.raises(KeyboardInterrupt):
        with map_exceptions(TABLES[family]):
            raise KeyboardInterrupt
    unknown = LookupError("not a foreign error of any family")
    with pytest.raises(LookupError) as raised:
        with map_exceptions(TABLES[family]):
            raise unknown
    assert raised.value is unknown


async def test_a_catch_all_table_still_leaves_cancelled_alone() -> None:
    table: ErrorTable = {BaseException: lambda exc: RuntimeError("mapped"), Exception: RuntimeError}  # type: ignore[dict-item]
    with trio.CancelScope() as scope:
        scope.cancel()
        try:
            await trio.lowlevel.checkpoint()
        except BaseException as exc:
            assert mapped_exception(table, exc) is None
            with map_exceptions(table):
                raise
    assert scope.cancelled_caught


def test_an_error_already_typed_passes_through_the_fs_table() -> None:
    typed = engine.NoSuchFileError(errno.ENOENT, "gone", "x")
    with pytest.raises(engine.NoSuchFileError) as raised:
        with map_exceptions(FS_ERRORS):
            raise typed
    assert raised.value is typed and raised.value.__cause__ is None


def test_git_passes_through_a_missing_file_that_is_not_git() -> None:
    cwd_missing = FileNotFoundError(errno.ENOENT, "gone", "/no/such/dir")
    with pytest.raises(FileNotFoundError) as raised:
        with map_exceptions(git_errors("git")):
            raise cwd_missing
    assert raised.value is cwd_missing


# -- the tables in use, on real parts ------------------------------------------------------------


async def test_fs_read_of_a_missing_file_keeps_the_os_error(tmp_path: Path) -> None:
    fs = adapters.ScopedFileSystem(tmp_path)
    with pytest.raises(engine.NoSuchFileError) as raised:
        await fs.read_bytes("missing.txt")
    assert isinstance(raised.value.__cause__, FileNotFoundError)


async def test_git_that_cannot_be_run_keeps_the_os_error(tmp_path: Path) -> None:
    with pytest.raises(engine.GitNotFoundError) as raised:
        await adapters.open_repository(tmp_path, git=str(tmp_path / "no-such-git"))
    assert isinstance(raised.value.__cause__, FileNotFoundError)


async def test_feed_client_to_a_closed_port_keeps_the_os_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(adapters.FeedConnectionError) as raised:
        async with adapters.open_feed_client(f"ws://127.0.0.1:{port}/feed", "token"):
            pass
    assert isinstance(raised.value.__cause__, OSError)


def test_a_forged_feed_token_keeps_the_jwt_error() -> None:
    with pytest.raises(adapters.FeedTokenInvalidError) as raised:
        adapters.verify_token("s" * 32, "not.a.token")
    assert isinstance(raised.value.__cause__, jwt.PyJWTError)
