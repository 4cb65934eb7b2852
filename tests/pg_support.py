"""A real PostgreSQL for the tests: the embedded server, started once per test run.

Fixtures (registered in ``tests/conftest.py``):

- ``pg_server``: the session's :class:`adapters.EmbeddedServer` (in a temporary directory; stopped at the end).
- ``pg_url``: a URL to the ``scribe_test`` database on it, shared by every test of the run. Tests using it
  should create their own tables or tolerate other tests' rows.
- ``fresh_pg_url``: a URL to a new, empty database made for one test and dropped after it.
- ``pg_tmp_path``: a temporary directory for tests that run their own embedded server (an engine home).

The same on Debian's own PostgreSQL server (an older major version, no pgvector; see
``debian_pg_support``), started the first time a test asks for it:

- ``debian_pg_server``: the session's :class:`debian_pg_support.DebianServer` (stopped at the end).
- ``debian_pg_url`` / ``fresh_debian_pg_url``: as ``pg_url`` / ``fresh_pg_url``, on that server.
- ``any_fresh_pg_url``: a fresh database on each server in turn (the test runs once per server, ids
  ``embedded`` and ``debian``). :data:`FRESH_PG_URL_FIXTURES` names the fixture of each server, for
  fixtures that choose the backend themselves (``request.getfixturevalue(FRESH_PG_URL_FIXTURES[name])``).

Helpers: :func:`create_database` / :func:`drop_database` for tests that need several databases.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import psycopg.conninfo
import psycopg.sql
import pytest
from debian_pg_support import DebianServer, debian_server_directory, reap_stale_debian_servers

import adapters

#: Settings for test servers: durability against machine crashes is not needed (a process crash, as
#: ``pg_ctl stop -m immediate``, still loses nothing committed with ``fsync=off``).
TEST_SETTINGS = {"fsync": "off", "full_page_writes": "off", "max_connections": "300"}


def start_test_server(directory: Path) -> adapters.EmbeddedServer:
    """Initialise and start an embedded server whose data lives in ``directory / "pgdata"``."""
    server = adapters.EmbeddedServer(directory / "pgdata", settings=TEST_SETTINGS)
    server.start()
    return server


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead (a libpq ``key=value`` string)."""
    return psycopg.conninfo.make_conninfo(url, dbname=name)


def create_database(url: str, prefix: str = "t") -> str:
    """Create an empty database on ``url``'s server and return a URL to it."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    return with_database(url, name)


def drop_database(url: str) -> None:
    """Drop the database ``url`` points at, disconnecting whoever still uses it."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    assert isinstance(name, str)
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                psycopg.sql.Identifier(name)
            )
        )


_PREFIX = "scribe-pg-test-"
_OWNER_FILE = "owner.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale_servers() -> None:
    """Stop the servers and remove the directories of earlier test runs that were killed before their
    fixtures could clean up (their owner process is gone)."""
    for directory in Path(tempfile.gettempdir()).glob(_PREFIX + "*"):
        try:
            owner = int((directory / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        with contextlib.suppress(adapters.EmbeddedServerError):
            adapters.EmbeddedServer(directory / "pgdata").stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def server_directory() -> Iterator[Path]:
    """A fresh directory for a server's data, removed afterwards.

    Not under pytest's ``tmp_path``: every pytest run resets its temp root to mode 0700, which would lock
    the server's unprivileged user out of a data directory there while a concurrent run starts. The
    directory records the test process's pid so a later run can clean up after a killed one.
    """
    directory = Path(tempfile.mkdtemp(prefix=_PREFIX))
    (directory / _OWNER_FILE).write_text(str(os.getpid()))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def pg_tmp_path() -> Iterator[Path]:
    """Like ``tmp_path``, for tests that put an embedded server's data (an engine home) there."""
    with server_directory() as directory:
        yield directory


@pytest.fixture(scope="session")
def pg_server() -> Iterator[adapters.EmbeddedServer]:
    reap_stale_servers()
    with server_directory() as directory:
        server = start_test_server(directory)
        try:
            yield server
        finally:
            server.stop("fast")


@pytest.fixture(scope="session")
def pg_url(pg_server: adapters.EmbeddedServer) -> str:
    pg_server.create_database("scribe_test")
    return pg_server.url("scribe_test")


@pytest.fixture
def fresh_pg_url(pg_url: str) -> Iterator[str]:
    url = create_database(pg_url)
    try:
        yield url
    finally:
        drop_database(url)


# -- Debian's server -------------------------------------------------------------------------------

#: The fixture giving a fresh, empty database on each PostgreSQL server the tests run against.
FRESH_PG_URL_FIXTURES = {"embedded": "fresh_pg_url", "debian": "fresh_debian_pg_url"}


@contextlib.contextmanager
def running_debian_server() -> Iterator[DebianServer]:
    """A throwaway cluster of Debian's server with the test settings, started for the block."""
    with debian_server_directory() as directory:
        server = DebianServer(directory, settings=TEST_SETTINGS)
        server.start()
        try:
            yield server
        finally:
            server.stop("fast")


@pytest.fixture(scope="session")
def debian_pg_server() -> Iterator[DebianServer]:
    reap_stale_debian_servers()
    with running_debian_server() as server:
        yield server


@pytest.fixture(scope="session")
def debian_pg_url(debian_pg_server: DebianServer) -> str:
    with psycopg.connect(debian_pg_server.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE scribe_test")
    return debian_pg_server.url("scribe_test")


@pytest.fixture
def fresh_debian_pg_url(debian_pg_url: str) -> Iterator[str]:
    url = create_database(debian_pg_url)
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture(params=sorted(FRESH_PG_URL_FIXTURES))
def any_fresh_pg_url(request: pytest.FixtureRequest) -> str:
    url = request.getfixturevalue(FRESH_PG_URL_FIXTURES[request.param])
    assert isinstance(url, str)
    return url
