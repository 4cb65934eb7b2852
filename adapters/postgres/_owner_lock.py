"""This process as a session owner: the advisory lock on a dedicated connection, and what "alive" means.

An owner is alive while its lease in ``engine_owners`` holds (:mod:`._owner_lease`) and its
session-level advisory lock is held (the lock dies with the process's connection).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Final

import psycopg
import psycopg.rows
import trio

import engine

from ._database import Database
from ._errors import DatabaseError
from ._owner_lease import LEASE_ENDED, lease_holds
from ._session_rows import COLUMNS

__all__ = [
    "ORPHANS_WHERE",
    "OWNER_ALIVE",
    "OwnerLock",
    "keep_alive",
    "list_owners",
    "mark_orphans_sync",
]

# The heartbeat's warnings keep the logger name they always had.
_log = logging.getLogger("adapters.postgres._registry")

#: SQL condition: the owner row ``o`` belongs to a live process: its lease holds, and it holds its
#: advisory lock (a killed process's lock goes with its connection at once) unless its last renewal
#: is older than the server itself (a restarted server holds no lock until each owner takes its own
#: again, within a heartbeat).
OWNER_ALIVE: Final = f"""
    {lease_holds("o")}
    AND (o.heartbeat_at < pg_postmaster_start_time() OR EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = ((o.lock_key >> 32) & 4294967295)::oid
          AND l.objid = (o.lock_key & 4294967295)::oid
    ))
"""


#: SQL condition: the live session ``s`` has lost its owner: the owner is gone, or it holds the
#: session under a generation it has lost (``%(me)s``, ``%(gen)s``: this owner and its generation).
ORPHANS_WHERE: Final = f"""
    s.state = ANY(%(live)s) AND s.owner IS NOT NULL AND CASE WHEN s.owner = %(me)s
        THEN s.owner_generation IS DISTINCT FROM %(gen)s::bigint
        ELSE NOT EXISTS (SELECT 1 FROM engine_owners o WHERE o.owner_id = s.owner
            AND o.generation IS NOT DISTINCT FROM s.owner_generation AND {OWNER_ALIVE})
    END
"""


class OwnerLock:
    """The dedicated connection holding this owner's session-level advisory lock."""

    def __init__(self, url: str, key: int) -> None:
        self._url = url
        self._key = key
        self._conn: psycopg.Connection[Any] | None = None

    def ensure(self) -> None:
        """(Re)connect and take the lock if the connection is gone; check it is alive otherwise."""
        conn = self._conn
        if conn is not None and not conn.closed:
            try:
                conn.execute("SELECT 1")
                return
            except psycopg.Error:
                conn.close()
        self._conn = None
        conn = psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=5,
            application_name="scribe-owner",
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
            if row is None or not row[0]:
                raise engine.StoreError(
                    f"owner lock {self._key} is held by another process; owner ids must be unique"
                )
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # closing the session releases the lock
            self._conn = None


async def keep_alive(
    lock: OwnerLock, heartbeat: Callable[[], Awaitable[None]], interval: float
) -> None:
    """Every ``interval`` seconds, check the lock connection (re-taking the lock if it was lost) and
    refresh the heartbeat; a failure is logged (the first, then its recovery) and tried again next
    time. Runs until cancelled.

    Cancellation: stops at once; a lock check in its worker thread finishes first.
    """
    throttle = engine.LogThrottle(_log)
    while True:
        await trio.sleep(interval)
        try:
            await trio.to_thread.run_sync(lock.ensure)
            await heartbeat()
        except (DatabaseError, psycopg.Error, engine.StoreError) as exc:
            throttle.failed("heartbeat", "session registry heartbeat failed: %s", exc)
        else:
            throttle.recovered("heartbeat", "session registry heartbeat works again")


async def list_owners(
    db: Database, owner_ids: Collection[str] | None = None
) -> dict[str, engine.OwnerInfo]:
    """The rows of ``engine_owners`` (those of ``owner_ids`` when given), by owner id, oldest first;
    ``alive`` says whether the lease holds (the advisory lock is left to the orphan sweep: reading
    ``pg_locks`` costs more than a list may).

    Cancellation: the query is cancelled on the server.
    """
    rows = await db.fetch(
        "SELECT o.owner_id, o.host, o.pid, o.name, o.generation, " + lease_holds("o") + " AS alive "
        "FROM engine_owners o WHERE %(ids)s::text[] IS NULL OR o.owner_id = ANY(%(ids)s::text[]) "
        "ORDER BY o.started_at, o.owner_id",
        {"ids": None if owner_ids is None else sorted(owner_ids)},
    )
    return {r["owner_id"]: engine.OwnerInfo(**r) for r in rows}


def mark_orphans_sync(
    conn: psycopg.Connection[Any], params: dict[str, Any]
) -> list[dict[str, Any]]:
    """In one transaction on ``conn``: mark orphaned the live sessions :data:`ORPHANS_WHERE` finds
    (their rows come back), end the leases of their owners, and delete the rows of gone owners no
    session names any more."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            "UPDATE sessions s SET state = 'orphaned', version = s.version + 1, "
            "error = COALESCE(s.error, 'owner ' || s.owner || ' is gone') "
            "WHERE " + ORPHANS_WHERE + " RETURNING " + COLUMNS,
            params,
        )
        rows = cur.fetchall()
    conn.execute(
        "DELETE FROM engine_owners o WHERE o.owner_id <> %(me)s AND NOT ("
        + OWNER_ALIVE
        + ") AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.owner = o.owner_id)",
        params,
    )
    conn.execute(
        f"UPDATE engine_owners o SET {LEASE_ENDED} WHERE o.owner_id = ANY(%(gone)s) "
        f"AND {lease_holds('o')}",
        {"gone": sorted({r["owner"] for r in rows} - {params["me"]})},
    )
    return rows
