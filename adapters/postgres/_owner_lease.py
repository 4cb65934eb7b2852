"""This daemon's lease on its sessions: its identity row in ``engine_owners``, renewed by heartbeats,
a new generation when the lease had lapsed, and the fence every write to a session carries.

The lease is on the database's clock (``now()``), so daemons on hosts whose clocks disagree still
agree on who is alive. A lease whose last renewal is older than the server itself (the server
restarted: nobody could renew while it was down) runs its length again from the server's start
(:func:`lease_holds`), so a database restart takes no session from a daemon that is still there. A write to a session is fenced in the same statement: a session owned by this
daemon is written only under the generation it was owned under and while the lease holds; a live
session owned by another daemon is not written at all; a finished or orphaned one of another daemon
may be (a note replayed from a journal, a tag).
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any, Final, final

import engine

from ._database import Database
from ._errors import DatabaseError

__all__ = ["FENCE", "LEASE_ENDED", "LIVE", "OwnerLease", "fence_failure", "lease_holds"]

_log = logging.getLogger("adapters.postgres._registry")

#: The live states (the ones only their owner writes), as the fence's ``%(live)s`` takes them.
LIVE: Final = sorted(s.value for s in engine.LIVE_STATES)


def lease_holds(alias: str) -> str:
    """SQL condition: the lease of the ``engine_owners`` row ``alias`` holds now: its end is ahead,
    or its last renewal is older than the server's start and its length, counted from that start,
    has not run out."""
    return (
        f"({alias}.lease_until > now() OR ({alias}.heartbeat_at < pg_postmaster_start_time() "
        f"AND pg_postmaster_start_time() + ({alias}.lease_until - {alias}.heartbeat_at) > now()))"
    )


#: SQL ``SET`` list that ends a lease now (a renewal at the same moment: no length left to run from
#: a server start either).
LEASE_ENDED: Final = "lease_until = now(), heartbeat_at = now()"

#: SQL condition on the session row ``s``: the writer ``%(me)s`` under generation ``%(gen)s`` may
#: write to it (``%(live)s``: :data:`LIVE`).
FENCE: Final = f"""(CASE WHEN s.owner = %(me)s THEN
        s.owner_generation IS NOT DISTINCT FROM %(gen)s::bigint AND EXISTS (
            SELECT 1 FROM engine_owners fo WHERE fo.owner_id = %(me)s
            AND fo.generation = %(gen)s::bigint AND {lease_holds("fo")})
    ELSE NOT s.state = ANY(%(live)s::text[]) END)"""

_ACQUIRE: Final = """
INSERT INTO engine_owners (owner_id, lock_key, pid, host, name, generation, lease_until)
VALUES (%(me)s, %(key)s, %(pid)s, %(host)s, %(name)s, nextval('owner_generations'),
        now() + make_interval(secs => %(lease)s))
ON CONFLICT (owner_id) DO UPDATE SET generation = EXCLUDED.generation, heartbeat_at = now(),
    lease_until = EXCLUDED.lease_until
RETURNING generation
"""

_RENEW: Final = f"""
UPDATE engine_owners o SET heartbeat_at = now(), lease_until = now() + make_interval(secs => %(lease)s)
WHERE o.owner_id = %(me)s AND o.generation = %(gen)s AND {lease_holds("o")}
"""


@final
class OwnerLease:
    """Who this daemon is (owner id, host, pid, name) and the generation its lease is under.

    Args:
        owner_id: the owner id.
        lock_key: the key of its advisory lock.
        name: the name it was given (empty: none).
        lease: seconds a renewal holds.
    """

    def __init__(self, owner_id: str, lock_key: int, name: str, lease: float) -> None:
        self.owner_id = owner_id
        self.lock_key = lock_key
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.name = name
        self.lease = lease
        self.generation = 0  # none until the first renewal

    def __repr__(self) -> str:
        return f"<OwnerLease {self.owner_id} generation {self.generation}>"

    def fence_params(self) -> dict[str, Any]:
        """The parameters :data:`FENCE` names."""
        return {"me": self.owner_id, "gen": self.generation, "live": LIVE}

    async def renew(self, db: Database) -> int | None:
        """Renew the lease; when it had lapsed (or the row is gone), take a new generation, log it and
        return the old one (None: renewed, or the first generation was taken).

        Cancellation: rolled back, nothing written.
        """
        params = {
            "me": self.owner_id,
            "gen": self.generation,
            "lease": self.lease,
            "key": self.lock_key,
            "pid": self.pid,
            "host": self.host,
            "name": self.name,
        }
        if self.generation and await db.execute(_RENEW, params):
            return None
        old, self.generation = self.generation, int(await db.fetchval(_ACQUIRE, params))
        if not old:
            return None
        _log.warning(
            "the lease of this daemon (owner %s, generation %d) had expired: its sessions may have "
            "been taken over, and none of them is written from now on; new sessions are owned "
            "under generation %d",
            self.owner_id,
            old,
            self.generation,
        )
        return old

    async def end(self, db: Database) -> None:
        """End the lease now (the row stays: the sessions owned under it still say by whom); a
        failure is logged (the lease then runs out by itself).

        Cancellation: rolled back, nothing written.
        """
        try:
            await db.execute(
                f"UPDATE engine_owners SET {LEASE_ENDED} WHERE owner_id = %s", (self.owner_id,)
            )
        except DatabaseError as exc:
            _log.warning("the lease of owner %s was not ended: %s", self.owner_id, exc)


async def fence_failure(db: Database, lease: OwnerLease, session_id: str) -> Exception | None:
    """Why :data:`FENCE` refuses ``lease``'s writes to the session (None: it does not; the session
    may be missing: the caller tells).

    Cancellation: the query is cancelled on the server.
    """
    row = await db.fetchrow(
        "SELECT s.owner, s.state, s.owner_generation, " + FENCE + " AS allowed "
        "FROM sessions s WHERE s.id = %(id)s",
        {**lease.fence_params(), "id": session_id},
    )
    if row is None or row["allowed"]:
        return None
    owner = row["owner"]
    if owner != lease.owner_id:
        why = f"it is {row['state']} and owned by {owner or 'nobody'}"
    elif row["owner_generation"] != lease.generation:
        why = (
            f"this daemon owned it under generation {row['owner_generation']}, before its lease "
            f"expired (now generation {lease.generation})"
        )
    else:
        why = "this daemon's lease has expired"
    return engine.NotOwnerError(session_id, owner, why)
