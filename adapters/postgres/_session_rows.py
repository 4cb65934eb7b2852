"""The ``sessions`` table's rows: the columns, the insert and update of a whole row, a record from a
row and a row from a record."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import engine

from ._errors import IntegrityError
from ._owner_lease import FENCE, lease_holds

__all__ = [
    "ADOPT",
    "COLUMNS",
    "INSERT",
    "QUERY",
    "UPDATE",
    "raise_if_parent_missing",
    "record_from_row",
    "row_values",
    "timestamp",
    "updated_record",
]

#: The columns of a session row, in the order every ``SELECT`` and ``RETURNING`` lists them.
COLUMNS: Final = (
    "id, name, backlog_id, kind, state, priority, tags, description, parent_id, related_ids, "
    "repo_path, created_at, last_activity, idle_timeout, error, owner, agent_session_id, version"
)

#: The registration of a new record at version 1 (named parameters from :func:`row_values`); no row
#: comes back when a session with that id is already stored.
INSERT: Final = (
    "INSERT INTO sessions (id, name, backlog_id, kind, state, priority, tags, description, "
    "parent_id, related_ids, repo_path, created_at, last_activity, idle_timeout, error, "
    "owner, owner_generation, agent_session_id, version) VALUES (%(id)s, %(name)s, "
    "%(backlog_id)s, %(kind)s, %(state)s, %(priority)s, %(tags)s, %(description)s, "
    "%(parent_id)s, %(related_ids)s, %(repo_path)s, %(created_at)s, %(last_activity)s, "
    "%(idle_timeout)s, %(error)s, %(owner)s, %(owner_generation)s, %(agent_session_id)s, 1) "
    "ON CONFLICT (id) DO NOTHING RETURNING " + COLUMNS
)

#: The compare-and-set write of a whole record (named parameters from :func:`row_values` and the
#: writer's fence, :data:`~._owner_lease.FENCE`).
UPDATE: Final = (
    "UPDATE sessions AS s SET name = %(name)s, backlog_id = %(backlog_id)s, kind = %(kind)s, "
    "state = %(state)s, priority = %(priority)s, tags = %(tags)s, "
    "description = %(description)s, parent_id = %(parent_id)s, "
    "related_ids = %(related_ids)s, repo_path = %(repo_path)s, "
    "last_activity = %(last_activity)s, idle_timeout = %(idle_timeout)s, "
    "error = %(error)s, owner = %(owner)s, agent_session_id = %(agent_session_id)s, "
    "version = version + 1 "
    "WHERE id = %(id)s AND version = %(version)s AND " + FENCE + " "
    "RETURNING version, created_at, last_activity"
)

#: An orphaned session taken over by the writer of the fence's parameters, under its lease.
ADOPT: Final = (
    "UPDATE sessions SET state = 'active', owner = %(me)s, owner_generation = %(gen)s, "
    "error = NULL, last_activity = now(), version = version + 1 "
    "WHERE id = %(id)s AND state = 'orphaned' AND EXISTS (SELECT 1 FROM engine_owners fo "
    "WHERE fo.owner_id = %(me)s AND fo.generation = %(gen)s AND " + lease_holds("fo") + ") "
    "RETURNING " + COLUMNS
)

#: Sessions matching the filters of :meth:`engine.SessionStore.query` (named parameters).
QUERY: Final = (
    "SELECT " + COLUMNS + " FROM sessions WHERE "
    "(%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[])) "
    "AND tags @> %(tags)s::text[] "
    "AND (%(kind)s::text IS NULL OR kind = %(kind)s::text) "
    "AND (%(priority)s::smallint IS NULL OR priority = %(priority)s::smallint) "
    "AND (%(owner)s::text IS NULL OR owner = %(owner)s::text) "
    "AND (%(backlog_id)s::text IS NULL OR backlog_id = %(backlog_id)s::text) "
    "AND (%(parent_id)s::text IS NULL OR parent_id = %(parent_id)s::text) "
    "AND (%(agent_session_id)s::text IS NULL "
    "OR agent_session_id = %(agent_session_id)s::text) "
    "AND (%(repo_path)s::text IS NULL OR repo_path = %(repo_path)s::text) "
    "AND (%(after)s::text IS NULL OR (created_at, id) > "
    "(SELECT created_at, id FROM sessions WHERE id = %(after)s::text)) "
    "ORDER BY created_at, id LIMIT %(limit)s"
)


def updated_record(record: engine.SessionRecord, row: Mapping[str, Any]) -> engine.SessionRecord:
    """The stored form of ``record`` after :data:`UPDATE` returned ``row``: every other field was
    written from the record itself, so only what the server decides is read back."""
    return dataclasses.replace(
        record,
        version=row["version"],
        created_at=row["created_at"].timestamp(),
        last_activity=row["last_activity"].timestamp(),
    )


def timestamp(value: float) -> datetime:
    """A POSIX time as an aware UTC datetime, as the timestamp columns take it."""
    return datetime.fromtimestamp(value, UTC)


def record_from_row(row: Mapping[str, Any]) -> engine.SessionRecord:
    """The session record a row holds.

    Raises:
        engine.StoreError: the row does not make a valid record.
    """
    try:
        return engine.SessionRecord(
            id=row["id"],
            name=row["name"],
            kind=row["kind"],
            state=row["state"],
            priority=row["priority"],
            backlog_id=row["backlog_id"],
            tags=tuple(row["tags"]),
            description=row["description"],
            parent_id=row["parent_id"],
            related_ids=tuple(row["related_ids"]),
            repo_path=Path(row["repo_path"]) if row["repo_path"] is not None else None,
            created_at=row["created_at"].timestamp(),
            last_activity=row["last_activity"].timestamp(),
            idle_timeout=row["idle_timeout"],
            error=row["error"],
            owner=row["owner"],
            agent_session_id=row["agent_session_id"],
            version=row["version"],
        )
    except engine.InvalidArgumentError as exc:
        raise engine.StoreError(f"stored session {row.get('id')!r} is unreadable: {exc}") from exc


def row_values(record: engine.SessionRecord) -> dict[str, Any]:
    """The named query parameters of a record's row."""
    return {
        "id": record.id,
        "name": record.name,
        "backlog_id": record.backlog_id,
        "kind": record.kind.value,
        "state": record.state.value,
        "priority": int(record.priority),
        "tags": list(record.tags),
        "description": record.description,
        "parent_id": record.parent_id,
        "related_ids": list(record.related_ids),
        "repo_path": str(record.repo_path) if record.repo_path is not None else None,
        "created_at": timestamp(record.created_at),
        "last_activity": timestamp(record.last_activity),
        "idle_timeout": record.idle_timeout,
        "error": record.error,
        "owner": record.owner,
        "agent_session_id": record.agent_session_id,
        "version": record.version,
    }


def raise_if_parent_missing(exc: IntegrityError, parent_id: str | None) -> None:
    """Raise :class:`engine.StoreNotFoundError` when ``exc`` is the missing parent's foreign key."""
    if exc.constraint == "sessions_parent_id_fkey" and parent_id is not None:
        raise engine.StoreNotFoundError(parent_id, "parent session") from exc
