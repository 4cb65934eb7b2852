"""How the memory tables' rows are read and written: column lists, row-to-record conversions, JSON
values and expiry expressions (tables from ``migrations/0100_memory.sql``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, LiteralString

from psycopg.types.json import Jsonb

from engine import (
    ContextFact,
    Decision,
    DecisionStatus,
    Message,
    MessageRole,
    Preference,
    check_json,
)

__all__ = [
    "DEC_COLS",
    "ENSURE_SESSION",
    "EXPIRY",
    "FACT_COLS",
    "MSG_COLS",
    "PREF_COLS",
    "decision_row",
    "fact_row",
    "jsonb",
    "message_row",
    "preference_row",
    "scope_filter",
]

# 'infinity' cannot be loaded into a datetime: every column list maps it to NULL.
MSG_COLS: Final = (
    "m.id, m.session_id, m.seq, m.role, m.content, m.content_hash, m.metadata, m.created_at, "
    "nullif(m.expires_at, 'infinity') AS expires_at, m.source_id"
)
DEC_COLS: Final = (
    "d.id, d.session_id, d.title, d.body, d.status, d.superseded_by, d.entities, d.files, "
    "d.created_at, d.updated_at, nullif(d.expires_at, 'infinity') AS expires_at"
)
FACT_COLS: Final = (
    "session_id, fact_type, key, value, pinned, created_at, updated_at, "
    "nullif(expires_at, 'infinity') AS expires_at"
)
PREF_COLS: Final = (
    "user_id, key, value, confidence, source, usage_count, last_used_at, created_at, updated_at, "
    "nullif(expires_at, 'infinity') AS expires_at"
)
# A time to live in seconds (NULL: never) as an expiry timestamp.
EXPIRY: Final = "coalesce(now() + {ttl}::float8 * interval '1 second', 'infinity')"
# Make the memory session a row belongs to, if it is missing.
ENSURE_SESSION: Final = (
    "INSERT INTO memory_sessions (session_id) VALUES (%s) ON CONFLICT DO NOTHING"
)


def scope_filter(alias: LiteralString, *, session: bool, repo: bool) -> LiteralString:
    """The condition (`` AND ...``, or nothing) keeping the rows of table ``alias`` that belong to
    the session ``%(sid)s`` or to a memory session carrying the repository ``%(repo)s``."""
    own: LiteralString = alias + ".session_id = %(sid)s"
    # A filter on the rows a ranking's own index finds, not an index condition: as an IN join the
    # planner repeated the ranking's index scan once per session of the repository, and as a
    # plain ANY it ANDed in a bitmap of every row of the repository's sessions (at a million
    # messages, 185 and 267 ms against 40 ms for a full-text search of two common words). The
    # array is computed once (an InitPlan); ``|| ''`` keeps the comparison out of index scans.
    in_repo: LiteralString = (
        "(" + alias + ".session_id || '') = ANY (ARRAY(SELECT session_id FROM memory_sessions"
        " WHERE repo = %(repo)s))"
    )
    if session and repo:
        return " AND (" + own + " OR " + in_repo + ")"
    if session:
        return " AND " + own
    if repo:
        return " AND " + in_repo
    return ""


def jsonb(what: str, value: Any) -> Jsonb:
    """``value`` as a JSON parameter, checked by :func:`engine.check_json`."""
    return Jsonb(check_json(what, value))


def message_row(row: Mapping[str, Any]) -> Message:
    """A :class:`engine.Message` from a row of :data:`MSG_COLS`."""
    return Message(
        id=row["id"],
        session_id=row["session_id"],
        seq=row["seq"],
        role=MessageRole(row["role"]),
        content=row["content"],
        content_hash=row["content_hash"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        source_id=row["source_id"],
    )


def decision_row(row: Mapping[str, Any]) -> Decision:
    """A :class:`engine.Decision` from a row of :data:`DEC_COLS`."""
    return Decision(
        id=row["id"],
        session_id=row["session_id"],
        title=row["title"],
        body=row["body"],
        status=DecisionStatus(row["status"]),
        superseded_by=row["superseded_by"],
        entities=tuple(row["entities"]),
        files=tuple(row["files"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
    )


def fact_row(row: Mapping[str, Any]) -> ContextFact:
    """A :class:`engine.ContextFact` from a row of :data:`FACT_COLS`."""
    return ContextFact(
        session_id=row["session_id"],
        fact_type=row["fact_type"],
        key=row["key"],
        value=row["value"],
        pinned=row["pinned"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
    )


def preference_row(row: Mapping[str, Any]) -> Preference:
    """A :class:`engine.Preference` from a row of :data:`PREF_COLS`."""
    return Preference(
        user_id=row["user_id"],
        key=row["key"],
        value=row["value"],
        confidence=row["confidence"],
        source=row["source"],
        usage_count=row["usage_count"],
        last_used_at=row["last_used_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        expires_at=row["expires_at"],
    )
