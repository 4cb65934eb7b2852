"""The session registry in memory: :class:`engine.SessionStore` with row versions and live owners."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import TYPE_CHECKING, final

import trio

from .._core._construction import NoPublicConstructor
from .._core._errors import IllegalTransitionError, InvalidArgumentError
from .._core._priority import Priority
from .._core._session_info import check_tags
from .._core._state import FINAL_STATES, TRANSITIONS, SessionKind, SessionState
from .._ports._owners import OwnerInfo
from .._ports._session_store import (
    LIVE_STATES,
    SessionRecord,
    SessionStore,
    StoreConflictError,
    StoreError,
    StoreNotFoundError,
)
from .._ports._validation import check_optional_limit
from ._database import InMemoryDatabase

__all__ = ["InMemorySessionStore", "open_in_memory_session_store"]

_owner_numbers = itertools.count(1)


def _order(record: SessionRecord) -> tuple[float, str]:
    return (record.created_at, record.id)


@final
class InMemorySessionStore(metaclass=NoPublicConstructor):
    """An :class:`engine.SessionStore` over an :class:`InMemoryDatabase`. Get one from
    :func:`open_in_memory_session_store`.

    Each call checks for cancellation first and then runs to the end without yielding, so it is
    atomic: a cancelled call has changed nothing, a call that returns has made its whole change.
    """

    def __init__(self, db: InMemoryDatabase, owner_id: str) -> None:
        self._db = db
        self._owner_id = owner_id

    def __repr__(self) -> str:
        return f"<InMemorySessionStore owner={self._owner_id!r} on {self._db!r}>"

    @property
    def owner_id(self) -> str:
        """This store's owner id (the engine process it stands for)."""
        return self._owner_id

    @property
    def database(self) -> InMemoryDatabase:
        """The rows the store lives in."""
        return self._db

    def _stored(self, session_id: str) -> SessionRecord:
        try:
            return self._db._sessions[session_id]
        except KeyError:
            raise StoreNotFoundError(session_id) from None

    def _check_parent(self, record: SessionRecord) -> None:
        if record.parent_id is not None and record.parent_id not in self._db._sessions:
            raise StoreNotFoundError(record.parent_id, "parent session")

    async def register(self, record: SessionRecord) -> SessionRecord:
        """See :meth:`engine.SessionStore.register`. Cancellation: nothing is stored."""
        await trio.lowlevel.checkpoint()
        if record.version != 0:
            raise InvalidArgumentError(
                f"register() takes a new record (version 0), not version {record.version}"
            )
        existing = self._db._sessions.get(record.id)
        if existing is not None:
            raise StoreConflictError(record.id, 0, existing.version)
        self._check_parent(record)
        stored = dataclasses.replace(
            record,
            owner=self._owner_id if record.owner is None else record.owner,
            created_at=round(record.created_at, 6),
            last_activity=round(record.last_activity, 6),
            version=1,
        )
        self._db._sessions[record.id] = stored
        return stored

    async def get(self, session_id: str) -> SessionRecord:
        """See :meth:`engine.SessionStore.get`. Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        return self._stored(session_id)

    async def update(self, record: SessionRecord) -> SessionRecord:
        """See :meth:`engine.SessionStore.update`. Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        if record.version < 1:
            raise InvalidArgumentError("update() takes a stored record (version >= 1)")
        current = self._stored(record.id)
        if current.version != record.version:
            raise StoreConflictError(record.id, record.version, current.version)
        self._check_parent(record)
        stored = dataclasses.replace(
            record,
            created_at=current.created_at,
            last_activity=round(record.last_activity, 6),
            version=current.version + 1,
        )
        self._db._sessions[record.id] = stored
        return stored

    async def set_state(
        self,
        session_id: str,
        state: SessionState,
        *,
        expected_version: int,
        error: str | None = None,
    ) -> SessionRecord:
        """See :meth:`engine.SessionStore.set_state`. Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        target = SessionState(state)
        current = self._stored(session_id)
        if current.version != expected_version:
            raise StoreConflictError(session_id, expected_version, current.version)
        if target not in TRANSITIONS[current.state]:
            raise IllegalTransitionError(current.state, target)
        stored = dataclasses.replace(
            current,
            state=target,
            error=error,
            last_activity=self._db.now(),
            version=current.version + 1,
        )
        self._db._sessions[session_id] = stored
        return stored

    async def touch(self, session_id: str, at: float | None = None) -> None:
        """See :meth:`engine.SessionStore.touch`. Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        current = self._stored(session_id)
        when = self._db.now() if at is None else round(at, 6)
        self._db._sessions[session_id] = dataclasses.replace(current, last_activity=when)

    async def add_tags(self, session_id: str, tags: Collection[str]) -> SessionRecord:
        """See :meth:`engine.SessionStore.add_tags`. Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        wanted = check_tags(tags)
        current = self._stored(session_id)
        added = current.tags + tuple(t for t in wanted if t not in current.tags)
        return self._retag(current, added)

    async def remove_tags(self, session_id: str, tags: Collection[str]) -> SessionRecord:
        """See :meth:`engine.SessionStore.remove_tags`. Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        gone = {tags} if isinstance(tags, str) else set(tags)
        current = self._stored(session_id)
        return self._retag(current, tuple(t for t in current.tags if t not in gone))

    def _retag(self, current: SessionRecord, tags: tuple[str, ...]) -> SessionRecord:
        stored = dataclasses.replace(current, tags=tags, version=current.version + 1)
        self._db._sessions[current.id] = stored
        return stored

    async def query(
        self,
        *,
        states: Collection[SessionState] | None = None,
        tags: Collection[str] = (),
        kind: SessionKind | None = None,
        priority: Priority | None = None,
        owner: str | None = None,
        backlog_id: str | None = None,
        parent_id: str | None = None,
        agent_session_id: str | None = None,
        repo_path: str | os.PathLike[str] | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[SessionRecord]:
        """See :meth:`engine.SessionStore.query`. Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        if isinstance(tags, str):
            raise InvalidArgumentError("tags must be a collection of strings, not one string")
        limit = check_optional_limit(limit)
        wanted_states = None if states is None else {SessionState(s) for s in states}
        wanted_tags = set(tags)
        wanted_kind = None if kind is None else SessionKind(kind)
        wanted_priority = None if priority is None else Priority(priority)
        wanted_repo = None if repo_path is None else str(Path(repo_path))
        start: tuple[float, str] | None = None
        if after is not None:
            if after not in self._db._sessions:
                raise StoreNotFoundError(after)
            start = _order(self._db._sessions[after])
        found = [
            r
            for r in sorted(self._db._sessions.values(), key=_order)
            if (start is None or _order(r) > start)
            and (wanted_states is None or r.state in wanted_states)
            and wanted_tags <= set(r.tags)
            and (wanted_kind is None or r.kind is wanted_kind)
            and (wanted_priority is None or r.priority == wanted_priority)
            and (owner is None or r.owner == owner)
            and (backlog_id is None or r.backlog_id == backlog_id)
            and (parent_id is None or r.parent_id == parent_id)
            and (agent_session_id is None or r.agent_session_id == agent_session_id)
            and (
                wanted_repo is None or (r.repo_path is not None and str(r.repo_path) == wanted_repo)
            )
        ]
        return found if limit is None else found[:limit]

    async def purge_finished(
        self, older_than_days: float, *, states: Collection[SessionState] | None = None
    ) -> int:
        """See :meth:`engine.SessionStore.purge_finished`. Cancellation: nothing is deleted."""
        await trio.lowlevel.checkpoint()
        if not older_than_days >= 0:
            raise InvalidArgumentError(f"older_than_days must be >= 0, not {older_than_days!r}")
        chosen = FINAL_STATES if states is None else {SessionState(s) for s in states}
        cutoff = self._db.now() - older_than_days * 86400.0
        doomed = [
            r.id
            for r in self._db._sessions.values()
            if r.state in chosen and r.last_activity < cutoff
        ]
        for session_id in doomed:
            self._db._forget_session(session_id)
        return len(doomed)

    def _orphans(self) -> list[SessionRecord]:
        return sorted(
            (
                r
                for r in self._db._sessions.values()
                if r.state in LIVE_STATES
                and r.owner is not None
                and r.owner != self._owner_id
                and r.owner not in self._db._live_owners
            ),
            key=_order,
        )

    async def find_orphans(self) -> list[SessionRecord]:
        """See :meth:`engine.SessionStore.find_orphans`: live sessions whose owner's store is closed.
        Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        return self._orphans()

    async def mark_orphans(self) -> list[SessionRecord]:
        """See :meth:`engine.SessionStore.mark_orphans`. Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        marked = []
        for r in self._orphans():
            stored = dataclasses.replace(
                r,
                state=SessionState.ORPHANED,
                error=r.error if r.error is not None else f"owner {r.owner} is gone",
                version=r.version + 1,
            )
            self._db._sessions[r.id] = stored
            marked.append(stored)
        return marked

    async def adopt(self, session_id: str) -> SessionRecord:
        """See :meth:`engine.SessionStore.adopt`. Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        current = self._db._sessions.get(session_id)
        if current is None:
            raise StoreNotFoundError(session_id)
        if current.state is not SessionState.ORPHANED:
            raise IllegalTransitionError(current.state, SessionState.ACTIVE)
        stored = dataclasses.replace(
            current,
            state=SessionState.ACTIVE,
            owner=self._owner_id,
            error=None,
            version=current.version + 1,
        )
        self._db._sessions[session_id] = stored
        return stored

    async def owners(self, owner_ids: Collection[str] | None = None) -> dict[str, OwnerInfo]:
        """See :meth:`engine.SessionStore.owners`: every owner a stored session names, and the live
        ones (host ``memory``, this process's pid). Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        named = {r.owner for r in self._db._sessions.values() if r.owner is not None}
        return {
            o: OwnerInfo(o, "memory", os.getpid(), "", 1, o in self._db._live_owners)
            for o in sorted(named | self._db._live_owners)
            if owner_ids is None or o in owner_ids
        }


@contextlib.asynccontextmanager
async def open_in_memory_session_store(
    db: InMemoryDatabase | None = None, *, owner_id: str | None = None
) -> AsyncIterator[InMemorySessionStore]:
    """A session store that is a live owner of its sessions for the block.

    When the block ends the owner is gone, as when an engine process exits: the live sessions it
    registered are found by the next :meth:`~InMemorySessionStore.mark_orphans` of another store
    over the same database.

    Args:
        db: the rows to use (default: a new, empty database).
        owner_id: this store's owner id (default: ``memory-owner-<n>``); unique among the live
            owners of ``db``.

    Raises:
        StoreError: another live store of ``db`` has that owner id.

    Cancellation: entering and leaving do not block.
    """
    database = InMemoryDatabase() if db is None else db
    owner = owner_id if owner_id is not None else f"memory-owner-{next(_owner_numbers)}"
    if owner in database._live_owners:
        raise StoreError(f"owner {owner!r} is already live on {database!r}")
    database._live_owners.add(owner)
    try:
        yield InMemorySessionStore._create(database, owner)
    finally:
        database._live_owners.discard(owner)


if TYPE_CHECKING:

    def _conforms(store: InMemorySessionStore) -> SessionStore:
        return store
