"""The session registry's storage protocol: what the engine asks of a durable session store.

No I/O here; ``adapters`` implements it over PostgreSQL. Every change to a stored session goes through a
row version: :meth:`SessionStore.update` and :meth:`SessionStore.set_state` name the version they read, and
a store that holds another version raises :class:`StoreConflictError` instead of overwriting (a lost update
is always an error, never silent).
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .._core._errors import InvalidArgumentError, ScribeError
from .._core._limits import NAME_MAX, check_length
from .._core._priority import Priority, coerce_priority
from .._core._session_info import SessionInfo, check_name, check_tags
from .._core._state import SessionKind, SessionState
from ._validation import check_seconds

if TYPE_CHECKING:
    from ._owners import OwnerInfo

__all__ = [
    "LIVE_STATES",
    "SessionRecord",
    "SessionStore",
    "StoreConflictError",
    "StoreError",
    "StoreNotFoundError",
    "check_agent_session_id",
]

#: States of a session some engine process is still responsible for (an orphan check looks at these).
LIVE_STATES: frozenset[SessionState] = frozenset(
    {SessionState.STARTING, SessionState.ACTIVE, SessionState.PAUSED, SessionState.STOPPING}
)


class StoreError(ScribeError):
    """Root of the session store's errors."""


class StoreConflictError(StoreError):
    """A write named a row version that is no longer current (someone else changed the session first),
    or a session with that id is already registered.

    Attributes:
        session_id: the session concerned.
        expected_version: the version the writer read (0 for a registration).
        actual_version: the version the store holds now.
    """

    def __init__(self, session_id: str, expected_version: int, actual_version: int) -> None:
        if expected_version == 0:
            message = f"session {session_id!r} is already registered (version {actual_version})"
        else:
            message = (
                f"session {session_id!r} changed concurrently: expected version {expected_version}, "
                f"found {actual_version}"
            )
        super().__init__(message)
        self.session_id = session_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class StoreNotFoundError(StoreError, LookupError):
    """No session with that id is stored (or a record names a parent that is not)."""

    def __init__(self, session_id: str, what: str = "session") -> None:
        super().__init__(f"no {what} {session_id!r} in the session store")
        self.session_id = session_id


def _check_id(what: str, value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 200 or not value.isprintable():
        raise InvalidArgumentError(f"{what} must be 1-200 printable characters, not {value!r}")
    return value


def check_agent_session_id(value: object) -> str:
    """An agent's own session id (a coding agent's conversation id), stripped: 1 to
    :data:`~engine.NAME_MAX` printable characters.

    Raises:
        FieldLimitError: it is longer than :data:`~engine.NAME_MAX` characters.
        InvalidArgumentError: it is not a string, is blank or holds unprintable characters.
    """
    if not isinstance(value, str):
        raise InvalidArgumentError(f"agent session id must be a string, not {type(value).__name__}")
    stripped = check_length("agent session id", value.strip(), NAME_MAX)
    if not stripped or not stripped.isprintable():
        raise InvalidArgumentError(
            f"invalid agent session id {value!r}: 1-{NAME_MAX} printable characters"
        )
    return stripped


def _check_ids(what: str, values: Iterable[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        raise InvalidArgumentError(f"{what} must be a collection of ids, not one string")
    return tuple(dict.fromkeys(_check_id(what, v) for v in values))


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A stored session, as the registry knows it. Frozen: change one with :func:`dataclasses.replace`
    and write it back with :meth:`SessionStore.update`.

    Values are checked and normalised on construction: enums accept their values or names, tags and
    related ids lose duplicates (order kept), ``repo_path`` becomes a :class:`~pathlib.Path`.

    Attributes:
        id: the session id (the engine's ``Session.id``).
        name: a display name.
        kind: what kind of work the session does.
        state: where it is in its life.
        priority: its admission priority.
        backlog_id: the backlog item it works on (e.g. ``B-1042``), if any.
        tags: free-form labels.
        description: free text.
        parent_id: the session it was forked from or continues.
        related_ids: other sessions it relates to.
        repo_path: the work tree it watches, if any.
        created_at: when it was created (seconds since the epoch).
        last_activity: when it last did something (seconds since the epoch).
        idle_timeout: seconds without activity after which it ends (None: never).
        error: why it failed, for failed and orphaned sessions.
        owner: the id of the engine process responsible for it (None: nobody).
        agent_session_id: the id the coding agent working in it uses for its own conversation (a
            Claude Code session id, say), if it gave one; stripped, at most
            :data:`~engine.NAME_MAX` characters.
        version: the row version; 0 for a record not stored yet, then 1, 2, ... per stored change.
    """

    id: str
    name: str
    kind: SessionKind = SessionKind.IMPLEMENTATION
    state: SessionState = SessionState.STARTING
    priority: Priority = Priority.MEDIUM
    backlog_id: str | None = None
    tags: tuple[str, ...] = ()
    description: str = ""
    parent_id: str | None = None
    related_ids: tuple[str, ...] = ()
    repo_path: Path | None = None
    created_at: float = field(default_factory=time.time)
    last_activity: float = field(default_factory=time.time)
    idle_timeout: float | None = None
    error: str | None = None
    owner: str | None = None
    agent_session_id: str | None = None
    version: int = 0

    def __post_init__(self) -> None:
        put = object.__setattr__
        _check_id("session id", self.id)
        put(self, "name", check_name(self.name))
        try:
            put(self, "kind", SessionKind(self.kind))
            put(self, "state", SessionState(self.state))
        except ValueError as exc:
            raise InvalidArgumentError(str(exc)) from None
        put(self, "priority", coerce_priority(self.priority))
        if self.backlog_id is not None:
            _check_id("backlog id", self.backlog_id)
        put(self, "tags", check_tags(self.tags))
        if not isinstance(self.description, str):
            raise InvalidArgumentError("description must be a string")
        if self.parent_id is not None:
            _check_id("parent id", self.parent_id)
            if self.parent_id == self.id:
                raise InvalidArgumentError(f"session {self.id!r} cannot be its own parent")
        put(self, "related_ids", _check_ids("related id", self.related_ids))
        if self.repo_path is not None:
            put(self, "repo_path", Path(self.repo_path))
        if self.idle_timeout is not None:
            put(self, "idle_timeout", check_seconds("idle_timeout", self.idle_timeout))
        if self.agent_session_id is not None:
            put(self, "agent_session_id", check_agent_session_id(self.agent_session_id))
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            raise InvalidArgumentError(f"version must be an int >= 0, not {self.version!r}")

    @classmethod
    def from_info(
        cls,
        info: SessionInfo,
        *,
        repo_path: Path | None = None,
        idle_timeout: float | None = None,
        related_ids: Sequence[str] = (),
        owner: str | None = None,
        agent_session_id: str | None = None,
    ) -> SessionRecord:
        """A new (version 0) record for a live engine session's snapshot."""
        return cls(
            id=info.id,
            name=info.name,
            kind=info.kind,
            state=info.state,
            priority=info.priority,
            backlog_id=info.backlog_id,
            tags=info.tags,
            description=info.description,
            parent_id=info.parent_id,
            related_ids=tuple(related_ids),
            repo_path=repo_path,
            created_at=info.created_at,
            last_activity=info.last_activity,
            idle_timeout=idle_timeout,
            error=info.error,
            owner=owner,
            agent_session_id=agent_session_id,
        )


@runtime_checkable
class SessionStore(Protocol):
    """Durable storage of session records, shared by every engine process using the same database.

    Implementations make each call atomic; a call that returns has committed. Every async method may be
    cancelled: the change is then either fully made or not made at all.
    """

    @property
    def owner_id(self) -> str:
        """The id under which this store's process owns sessions (registered records default to it)."""
        ...

    async def register(self, record: SessionRecord) -> SessionRecord:
        """Store a new session (``record.version`` must be 0) and return it at version 1.

        ``owner`` None becomes :attr:`owner_id`.

        Raises:
            StoreConflictError: a session with that id is already stored.
            StoreNotFoundError: ``parent_id`` names a session that is not stored.
        """
        ...

    async def get(self, session_id: str) -> SessionRecord:
        """The stored record.

        Raises:
            StoreNotFoundError: no such session.
        """
        ...

    async def update(self, record: SessionRecord) -> SessionRecord:
        """Write every field of ``record`` if the stored version is still ``record.version``; return
        the stored result at the next version (``created_at`` is never changed).

        Raises:
            StoreConflictError: the stored version differs (nothing was written).
            StoreNotFoundError: no such session.
        """
        ...

    async def set_state(
        self,
        session_id: str,
        state: SessionState,
        *,
        expected_version: int,
        error: str | None = None,
    ) -> SessionRecord:
        """Move a session to ``state`` (and record ``error``) if it is still at ``expected_version``;
        also sets ``last_activity`` to now.

        Raises:
            StoreConflictError: the stored version differs (nothing was written).
            IllegalTransitionError: the stored state cannot move to ``state`` (``engine.TRANSITIONS``).
            StoreNotFoundError: no such session.
        """
        ...

    async def touch(self, session_id: str, at: float | None = None) -> None:
        """Record activity (``last_activity``, default now) without changing the row version: activity
        is not a change anyone could lose.

        Raises:
            StoreNotFoundError: no such session.
        """
        ...

    async def add_tags(self, session_id: str, tags: Collection[str]) -> SessionRecord:
        """Add tags atomically (whatever the version) and return the record at its next version.

        Raises:
            StoreNotFoundError: no such session.
        """
        ...

    async def remove_tags(self, session_id: str, tags: Collection[str]) -> SessionRecord:
        """Remove tags atomically (whatever the version) and return the record at its next version.

        Raises:
            StoreNotFoundError: no such session.
        """
        ...

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
        """Sessions matching every given filter (``tags``: having all of them), oldest first; at most
        ``limit`` of them (an int >= 1, :func:`engine.check_optional_limit`; None: all).

        ``repo_path`` matches the stored path exactly (as text; the store touches no file system):
        resolving a path to its work tree is the caller's part.

        ``after`` is a session id: only sessions after it in that order are returned (a page after
        the one that ended with it).

        Raises:
            StoreNotFoundError: no session ``after`` is stored.
        """
        ...

    async def purge_finished(
        self, older_than_days: float, *, states: Collection[SessionState] | None = None
    ) -> int:
        """Delete sessions in a final state (or in ``states``) whose last activity is older than
        ``older_than_days``, with their worklog and summaries; return how many were deleted."""
        ...

    async def find_orphans(self) -> list[SessionRecord]:
        """Live sessions (:data:`LIVE_STATES`) whose owning engine process is gone."""
        ...

    async def mark_orphans(self) -> list[SessionRecord]:
        """Atomically move every session :meth:`find_orphans` would return to ``orphaned`` (bumping its
        version) and return them as stored. Two engines doing this at once mark each session once."""
        ...

    async def adopt(self, session_id: str) -> SessionRecord:
        """Take over an orphaned session: it becomes active, owned by :attr:`owner_id` (under this
        owner's current lease), its error cleared, at its next version. Two owners adopting at once:
        one wins, the other gets :class:`~engine.IllegalTransitionError`.

        Raises:
            IllegalTransitionError: it is not orphaned.
            NotOwnerError: this owner's lease has expired.
            StoreNotFoundError: no such session.
        """
        ...

    async def owners(self, owner_ids: Collection[str] | None = None) -> dict[str, OwnerInfo]:
        """Every daemon that owns or owned a stored session (of ``owner_ids`` when given), by owner
        id (those that left no session behind may be forgotten); ``alive``: its lease holds."""
        ...
