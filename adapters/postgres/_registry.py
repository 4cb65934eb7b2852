"""The session registry over PostgreSQL: :class:`engine.SessionStore` with row versions and owner locks.

Each engine process (a daemon) is an *owner*: a row in ``engine_owners`` with its identity and a lease,
plus a session-level advisory lock held on a dedicated connection for as long as the process lives.
When the process dies, its connection closes and the lock is released at once; when it is cut off,
its lease runs out. Either way another engine can tell which sessions were left behind and mark them
orphaned, and every write to a session is fenced by the writer's lease generation. The owner lock
and the heartbeat are in :mod:`._owner_lock`, the lease and the fence in :mod:`._owner_lease`, the
rows' mapping in :mod:`._session_rows`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any, Final, LiteralString, final

import trio

import engine

from ._database import Database
from ._errors import IntegrityError, driver_errors
from ._owner_lease import FENCE, LEASE_ENDED, LIVE, OwnerLease, fence_failure
from ._owner_lock import ORPHANS_WHERE, OwnerLock, keep_alive, list_owners, mark_orphans_sync
from ._session_rows import (
    ADOPT,
    COLUMNS,
    INSERT,
    QUERY,
    UPDATE,
    raise_if_parent_missing,
    record_from_row,
    row_values,
    timestamp,
    updated_record,
)

__all__ = ["SessionRegistry", "open_session_registry"]

_log = logging.getLogger(__name__)


_FINAL_STATES: Final = tuple(sorted(s.value for s in engine.FINAL_STATES))


@final
class SessionRegistry(metaclass=engine.NoPublicConstructor):
    """The PostgreSQL :class:`engine.SessionStore`. Get one from :func:`open_session_registry`.

    Every call is one transaction through the database's priority gate; see :class:`engine.SessionStore`
    for what each call promises. Cancellation: a cancelled call is rolled back (nothing of it is
    written) and raises ``trio.Cancelled``.
    """

    def __init__(self, db: Database, lease: OwnerLease) -> None:
        self._db = db
        self._lease = lease
        self._owner_id = lease.owner_id

    @property
    def owner_id(self) -> str:
        """This process's owner id."""
        return self._owner_id

    @property
    def lease(self) -> OwnerLease:
        """This process's identity and lease (its generation fences every write)."""
        return self._lease

    @property
    def database(self) -> Database:
        """The database the registry lives in."""
        return self._db

    async def register(self, record: engine.SessionRecord) -> engine.SessionRecord:
        """See :meth:`engine.SessionStore.register`."""
        if record.version != 0:
            raise engine.InvalidArgumentError(
                f"register() takes a new record (version 0), not version {record.version}"
            )
        values = row_values(record)
        if values["owner"] is None:
            values["owner"] = self._owner_id
        mine = values["owner"] == self._owner_id
        values["owner_generation"] = self._lease.generation if mine else None

        try:
            row = await self._db.fetchrow(INSERT, values)
        except IntegrityError as exc:
            raise_if_parent_missing(exc, record.parent_id)
            raise
        if row is None:
            raise await self._why_not_written(record.id, 0)
        return record_from_row(row)

    async def get(self, session_id: str) -> engine.SessionRecord:
        """See :meth:`engine.SessionStore.get`."""
        row = await self._db.fetchrow(
            "SELECT " + COLUMNS + " FROM sessions WHERE id = %s", (session_id,)
        )
        if row is None:
            raise engine.StoreNotFoundError(session_id)
        return record_from_row(row)

    async def update(self, record: engine.SessionRecord) -> engine.SessionRecord:
        """See :meth:`engine.SessionStore.update`."""
        if record.version < 1:
            raise engine.InvalidArgumentError("update() takes a stored record (version >= 1)")
        values = {**row_values(record), **self._lease.fence_params()}
        try:
            row = await self._db.fetchrow(UPDATE, values)
        except IntegrityError as exc:
            raise_if_parent_missing(exc, record.parent_id)
            raise
        if row is None:
            raise await self._why_not_written(record.id, record.version)
        return updated_record(record, row)

    async def set_state(
        self,
        session_id: str,
        state: engine.SessionState,
        *,
        expected_version: int,
        error: str | None = None,
    ) -> engine.SessionRecord:
        """See :meth:`engine.SessionStore.set_state`."""
        target = engine.SessionState(state)
        sources = [s.value for s, targets in engine.TRANSITIONS.items() if target in targets]
        params = {
            "id": session_id,
            "state": target.value,
            "error": error,
            "version": expected_version,
            "sources": sources,
            **self._lease.fence_params(),
        }
        row = await self._db.fetchrow(
            "UPDATE sessions AS s SET state = %(state)s, error = %(error)s, last_activity = now(), "
            "version = version + 1 WHERE id = %(id)s AND version = %(version)s "
            "AND state = ANY(%(sources)s) AND " + FENCE + " RETURNING " + COLUMNS,
            params,
        )
        if row is None:
            raise await self._why_not_written(session_id, expected_version, target)
        return record_from_row(row)

    async def touch(self, session_id: str, at: float | None = None) -> None:
        """See :meth:`engine.SessionStore.touch`."""
        count = await self._db.execute(
            "UPDATE sessions AS s SET last_activity = COALESCE(%(at)s, now()) "
            "WHERE id = %(id)s AND " + FENCE,
            {
                "at": timestamp(at) if at is not None else None,
                "id": session_id,
                **self._lease.fence_params(),
            },
        )
        if count == 0:
            raise await self._not_written(session_id)

    async def add_tags(self, session_id: str, tags: Collection[str]) -> engine.SessionRecord:
        """See :meth:`engine.SessionStore.add_tags`."""
        return await self._change_tags(
            session_id,
            "tags || ARRAY(SELECT t FROM unnest(%(tags)s::text[]) WITH ORDINALITY u(t, i) "
            "WHERE NOT t = ANY(tags) ORDER BY i)",
            engine.SessionRecord(id="x", name="x", tags=tuple(tags)).tags,
        )

    async def remove_tags(self, session_id: str, tags: Collection[str]) -> engine.SessionRecord:
        """See :meth:`engine.SessionStore.remove_tags`."""
        return await self._change_tags(
            session_id,
            "ARRAY(SELECT t FROM unnest(tags) WITH ORDINALITY u(t, i) "
            "WHERE NOT t = ANY(%(tags)s::text[]) ORDER BY i)",
            tuple(tags) if not isinstance(tags, str) else (tags,),
        )

    async def query(
        self,
        *,
        states: Collection[engine.SessionState] | None = None,
        tags: Collection[str] = (),
        kind: engine.SessionKind | None = None,
        priority: engine.Priority | None = None,
        owner: str | None = None,
        backlog_id: str | None = None,
        parent_id: str | None = None,
        agent_session_id: str | None = None,
        repo_path: str | os.PathLike[str] | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[engine.SessionRecord]:
        """See :meth:`engine.SessionStore.query`."""
        if isinstance(tags, str):
            raise engine.InvalidArgumentError(
                "tags must be a collection of strings, not one string"
            )
        limit = engine.check_optional_limit(limit)
        params: dict[str, Any] = {
            "states": None if states is None else [engine.SessionState(s).value for s in states],
            "tags": list(tags),
            "kind": None if kind is None else engine.SessionKind(kind).value,
            "priority": None if priority is None else int(engine.Priority(priority)),
            "owner": owner,
            "backlog_id": backlog_id,
            "parent_id": parent_id,
            "agent_session_id": agent_session_id,
            "repo_path": None if repo_path is None else str(Path(repo_path)),
            "limit": limit,
            "after": after,
        }
        if after is not None and not await self._db.fetch(
            "SELECT 1 FROM sessions WHERE id = %s", (after,)
        ):
            raise engine.StoreNotFoundError(after)
        rows = await self._db.fetch(QUERY, params)
        return [record_from_row(row) for row in rows]

    async def purge_finished(
        self, older_than_days: float, *, states: Collection[engine.SessionState] | None = None
    ) -> int:
        """See :meth:`engine.SessionStore.purge_finished`."""
        if not older_than_days >= 0:
            raise engine.InvalidArgumentError(
                f"older_than_days must be >= 0, not {older_than_days!r}"
            )
        chosen = _FINAL_STATES if states is None else [engine.SessionState(s).value for s in states]
        return await self._db.execute(
            "DELETE FROM sessions WHERE state = ANY(%s) "
            "AND last_activity < now() - make_interval(secs => %s)",
            (list(chosen), older_than_days * 86400.0),
        )

    async def find_orphans(self) -> list[engine.SessionRecord]:
        """See :meth:`engine.SessionStore.find_orphans`."""
        rows = await self._db.fetch(
            "SELECT "
            + COLUMNS
            + " FROM sessions s WHERE "
            + ORPHANS_WHERE
            + " ORDER BY created_at, id",
            self._orphan_params(),
        )
        return [record_from_row(row) for row in rows]

    async def mark_orphans(self) -> list[engine.SessionRecord]:
        """See :meth:`engine.SessionStore.mark_orphans`. In the same transaction the leases of the
        owners found gone end, and the rows of those no session names any more are deleted."""
        params = self._orphan_params()

        rows = await self._db.run_sync(lambda conn: mark_orphans_sync(conn, params))
        return sorted((record_from_row(r) for r in rows), key=lambda r: (r.created_at, r.id))

    async def adopt(self, session_id: str) -> engine.SessionRecord:
        """See :meth:`engine.SessionStore.adopt`."""
        row = await self._db.fetchrow(ADOPT, {**self._lease.fence_params(), "id": session_id})
        if row is not None:
            return record_from_row(row)
        current = await self.get(session_id)
        if current.state is not engine.SessionState.ORPHANED:
            raise engine.IllegalTransitionError(current.state, engine.SessionState.ACTIVE)
        raise engine.NotOwnerError(session_id, current.owner, "this daemon's lease has expired")

    async def owners(self, owner_ids: Collection[str] | None = None) -> dict[str, engine.OwnerInfo]:
        """See :meth:`engine.SessionStore.owners`: the rows of ``engine_owners``."""
        return await list_owners(self._db, owner_ids)

    async def end_lease_of(self, owner_id: str) -> None:
        """End the lease of ``owner_id``, an owner the caller knows is gone (a daemon of the same
        home, whose home lock the caller now holds), so that :meth:`mark_orphans` need not wait for
        its lease to run out. This registry's own lease is never ended so.

        Cancellation: rolled back, nothing written.
        """
        engine.check_length("owner_id", owner_id, 500)
        if owner_id != self._owner_id:
            await self._db.execute(
                f"UPDATE engine_owners SET {LEASE_ENDED} WHERE owner_id = %s",
                (owner_id,),
            )

    async def heartbeat(self) -> None:
        """Renew this owner's lease; when it had expired (or another engine removed the row), take a
        new generation: the sessions owned under the old one are written no more (and are orphaned
        by the next sweep anywhere), and the warning says so.

        Cancellation: rolled back, nothing written.
        """
        await self._lease.renew(self._db)

    # -- internals --------------------------------------------------------------------------------

    def _orphan_params(self) -> dict[str, Any]:
        return {"live": LIVE, "me": self._owner_id, "gen": self._lease.generation}

    async def _change_tags(
        self, session_id: str, expression: LiteralString, tags: tuple[str, ...]
    ) -> engine.SessionRecord:
        row = await self._db.fetchrow(
            "UPDATE sessions AS s SET tags = " + expression + ", version = version + 1 "
            "WHERE id = %(id)s AND " + FENCE + " RETURNING " + COLUMNS,
            {"id": session_id, "tags": list(tags), **self._lease.fence_params()},
        )
        if row is None:
            raise await self._not_written(session_id)
        return record_from_row(row)

    async def _not_written(self, session_id: str) -> Exception:
        """The error for a fenced write that matched no row: not this daemon's, or not stored."""
        refused = await fence_failure(self._db, self._lease, session_id)
        return engine.StoreNotFoundError(session_id) if refused is None else refused

    async def _why_not_written(
        self, session_id: str, expected: int, target: engine.SessionState | None = None
    ) -> Exception:
        """The error for a conditional write that matched no row (a read after the fact: versions only
        grow, so a version seen now that differs from ``expected`` proves the conflict)."""
        row = await self._db.fetchrow(
            "SELECT version, state FROM sessions WHERE id = %s", (session_id,)
        )
        if row is None:
            return engine.StoreNotFoundError(session_id)
        refused = None if expected == 0 else await fence_failure(self._db, self._lease, session_id)
        if refused is not None:
            return refused
        if row["version"] != expected or target is None:
            return engine.StoreConflictError(session_id, expected, row["version"])
        return engine.IllegalTransitionError(engine.SessionState(row["state"]), target)


@contextlib.asynccontextmanager
async def open_session_registry(
    db: Database,
    *,
    owner_id: str | None = None,
    name: str = "",
    lease: float = 10.0,
    heartbeat_interval: float | None = None,
) -> AsyncIterator[SessionRegistry]:
    """Register this process as a session owner and serve the session registry for the block.

    Takes the owner's advisory lock on a dedicated connection, records the owner with its lease, and
    renews the lease (and checks the lock connection) every ``heartbeat_interval`` seconds in the
    background. On exit the lease is ended (the row stays, so the sessions it owned still say who
    owned them) and the lock released, so sessions this process left live are found by the next
    :meth:`~SessionRegistry.mark_orphans` anywhere.

    Args:
        db: the database (migrated).
        owner_id: this process's owner id (default: host, pid and a random part).
        name: a name for this daemon, shown with its sessions (at most 200 characters).
        lease: seconds a renewal holds: an owner that has not renewed for this long counts as gone
            (a hung or cut-off process), and writes nothing more to the sessions it owned.
        heartbeat_interval: seconds between renewals (default: a third of ``lease``).

    Raises:
        DatabaseError: the owner cannot be registered.
        InvalidArgumentError: ``name`` is too long, or not ``0 < heartbeat_interval < lease``.

    Cancellation: cancelling the block stops the heartbeat; the exit is shielded and time-limited.
    """
    interval = lease / 3 if heartbeat_interval is None else heartbeat_interval
    if not interval > 0 or not lease > interval:
        raise engine.InvalidArgumentError("need 0 < heartbeat_interval < lease")
    engine.check_length("daemon name", name, 200)
    owner = owner_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    key = secrets.randbits(63)
    lock = OwnerLock(db.url, key)
    registry = SessionRegistry._create(db, OwnerLease(owner, key, name, lease))

    with driver_errors():
        await trio.to_thread.run_sync(lock.ensure)
    try:
        await registry.heartbeat()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(keep_alive, lock, registry.heartbeat, interval)
            try:
                yield registry
            finally:
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(10):
            await registry.lease.end(db)
            await trio.to_thread.run_sync(lock.close)
