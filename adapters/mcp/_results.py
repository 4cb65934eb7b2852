"""The shapes of the MCP tools' answers (their output schemas), as msgspec structs.

They describe what the daemon's control operations answer; unknown fields are allowed so a newer
daemon can add some. The Python and Node MCP clients check every structured answer against these.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "CacheLookupOut",
    "CacheStoreOut",
    "ContextOut",
    "Daemon",
    "DecisionOut",
    "Entry",
    "RecallOut",
    "RehydrateOut",
    "RememberOut",
    "Session",
    "SessionPageOut",
    "SummaryOut",
    "WorklogOut",
]


class Daemon(msgspec.Struct, kw_only=True):
    """The daemon that owns a session: where it runs, its name, and whether its lease holds."""

    owner_id: str
    host: str
    pid: int
    name: str
    generation: int
    alive: bool


class Session(msgspec.Struct, kw_only=True):
    """A session as the registry knows it; ``daemon``: its owning daemon (in lists)."""

    id: str
    name: str
    kind: str
    state: str
    priority: str
    backlog_id: str | None
    tags: list[str]
    description: str
    parent_id: str | None
    related_ids: list[str]
    repo_path: str | None
    created_at: float
    last_activity: float
    idle_timeout: float | None
    error: str | None
    owner: str | None
    version: int
    agent_session_id: str | None = None
    description_truncated: bool | None = None
    daemon: Daemon | None = None


class Entry(msgspec.Struct, kw_only=True):
    """One worklog entry."""

    session_id: str
    seq: int
    kind: str
    created_at: float
    payload: dict[str, Any]


class SessionPageOut(msgspec.Struct, kw_only=True):
    """A page of sessions, oldest first; ``next`` is the ``after`` of the next page (null: none)."""

    sessions: list[Session]
    next: str | None


class ContextOut(msgspec.Struct, kw_only=True):
    """A session's context for a role: each source's status and value."""

    session_id: str
    role: str
    elapsed: float
    from_cache: bool
    fresh_for: float | None = None
    sources: dict[str, dict[str, Any]]


class WorklogOut(msgspec.Struct, kw_only=True):
    """A session and its worklog entries (oldest first), with the markdown if asked for."""

    session: Session
    entries: list[Entry]
    markdown: str | None = None


class SummaryOut(msgspec.Struct, kw_only=True):
    """A session and its newest summary (null: none yet)."""

    session: Session
    summary: dict[str, Any] | None


class DecisionOut(msgspec.Struct, kw_only=True):
    """A recorded decision."""

    id: int
    status: str


class RememberOut(msgspec.Struct, kw_only=True):
    """What was stored: a message or a fact."""

    kind: str
    session_id: str


class RecallOut(msgspec.Struct, kw_only=True):
    """The hits, best first."""

    hits: list[dict[str, Any]]


class RehydrateOut(msgspec.Struct, kw_only=True):
    """A memory bundle packed to a token budget, each item with its source (its citation)."""

    text: str
    items: list[dict[str, Any]]
    tokens: int
    token_budget: int


class CacheLookupOut(msgspec.Struct, kw_only=True):
    """A cached generation, if one matches."""

    hit: bool
    response: str | None = None


class CacheStoreOut(msgspec.Struct, kw_only=True):
    """The key the generation is stored under."""

    key: str
