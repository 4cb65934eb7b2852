"""PgBouncer between the daemon's database code and Debian's server: in session mode the registry,
the fenced worklog and the change notices work through it; in transaction mode the change listener
refuses to start with a clear error instead of silently missing other daemons' changes."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import trio
from debian_pg_support import DebianServer
from pgbouncer_support import PgBouncer

import adapters
import engine


def _bouncer(server: DebianServer, pool_mode: str) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(
        Path(tempfile.mkdtemp(prefix="scribe-pgbouncer-")), server.socket_dir, pool_mode
    )
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.remove()


@pytest.fixture
def session_bouncer(debian_pg_server: DebianServer) -> Iterator[PgBouncer]:
    yield from _bouncer(debian_pg_server, "session")


@pytest.fixture
def transaction_bouncer(debian_pg_server: DebianServer) -> Iterator[PgBouncer]:
    yield from _bouncer(debian_pg_server, "transaction")


def _name(url: str) -> str:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    assert isinstance(name, str)
    return name


async def test_session_mode_carries_leases_fences_and_notices(
    session_bouncer: PgBouncer, fresh_debian_pg_url: str
) -> None:
    url = session_bouncer.url(_name(fresh_debian_pg_url))
    async with (
        adapters.open_database(url, pool_size=2) as db,
        adapters.open_session_registry(db, owner_id="bounced", lease=60) as reg,
        adapters.open_change_listener(url, probe_timeout=5) as notices,
    ):
        log = adapters.PostgresWorklogStore(db, reg.lease)
        with trio.fail_after(30):
            await reg.register(engine.SessionRecord(id="s", name="s", state="active"))
            note = engine.WorklogEntry("s", 1, engine.EntryKind.NOTE, time.time(), {"text": "x"})
            await log.append([note])
            assert [await notices.receive() for _ in range(2)] == [
                engine.ChangeNotice(engine.NoticeKind.SESSION, "s", owner="bounced"),
                engine.ChangeNotice(engine.NoticeKind.WORKLOG, "s", 1, 1, owner="bounced"),
            ]
            assert (await reg.owners())["bounced"].alive


async def test_transaction_mode_is_refused_at_start(
    transaction_bouncer: PgBouncer, fresh_debian_pg_url: str
) -> None:
    url = transaction_bouncer.url(_name(fresh_debian_pg_url))
    with (
        trio.fail_after(30),
        pytest.raises(adapters.ChangeNoticesUnavailableError, match="pooler in transaction mode"),
    ):
        async with adapters.open_change_listener(url, probe_timeout=1):
            pass
