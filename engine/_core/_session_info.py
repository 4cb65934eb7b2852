"""What describes a session without running it: its limits, its snapshot, and the checks on the arguments
a session is started with."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ._errors import InvalidArgumentError
from ._limits import DESCRIPTION_MAX, LIST_MAX, NAME_MAX, TAG_MAX, check_count, check_length
from ._priority import Priority, coerce_priority
from ._state import SessionKind, SessionState

__all__ = [
    "SessionInfo",
    "SessionLimits",
    "SessionSpec",
    "check_name",
    "check_session_args",
    "check_tags",
    "coerce_kind",
]

_MAX_NAME = NAME_MAX


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Resource limits of one session.

    Attributes:
        quota: the most slots the session holds at once on any one limiter (None: the limiter's default).
        max_queued: the most admissions it may have waiting on one limiter; past it,
            ``AdmissionQueueFullError`` (None: no limit).
        max_tasks: the most tasks it runs at once; past it ``start_soon`` raises ``TooManyTasksError``
            (None: no limit).
    """

    quota: int | None = None
    max_queued: int | None = 256
    max_tasks: int | None = None

    def __post_init__(self) -> None:
        for what in ("quota", "max_queued", "max_tasks"):
            v = getattr(self, what)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise InvalidArgumentError(f"{what} must be an int >= 1 or None, not {v!r}")


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A snapshot of a session, safe to hand to other threads or serialize."""

    id: str
    name: str
    state: SessionState
    priority: Priority
    kind: SessionKind
    tags: tuple[str, ...]
    description: str
    backlog_id: str | None
    parent_id: str | None
    children: tuple[str, ...]
    created_at: float
    last_activity: float
    tasks: int
    error: str | None
    limits: SessionLimits = field(default_factory=SessionLimits)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state.value,
            "priority": self.priority.name.lower(),
            "kind": self.kind.value,
            "tags": list(self.tags),
            "description": self.description,
            "backlog_id": self.backlog_id,
            "parent": self.parent_id,
            "children": list(self.children),
            "created_at": self.created_at,
            "last_activity": self.last_activity,
            "tasks": self.tasks,
            "error": self.error,
        }


def check_name(name: object) -> str:
    """Validate a session name: a non-empty string of at most 200 printable characters."""
    if not isinstance(name, str):
        raise InvalidArgumentError(f"session name must be a string, not {type(name).__name__}")
    stripped = name.strip()
    if not stripped or len(stripped) > _MAX_NAME or not stripped.isprintable():
        raise InvalidArgumentError(
            f"invalid session name {name!r}: 1-{_MAX_NAME} printable characters"
        )
    return stripped


def check_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Validate tags: non-empty printable strings of at most :data:`~engine.TAG_MAX` characters
    without spaces; duplicates removed, order kept. (How many a session may have,
    :data:`~engine.LIST_MAX`, is checked where tags are given, not where they are read.)"""
    if isinstance(tags, str):
        raise InvalidArgumentError("tags must be a collection of strings, not one string")
    out: dict[str, None] = {}
    for tag in tags:
        if (
            not isinstance(tag, str)
            or not tag
            or len(tag) > TAG_MAX
            or not tag.isprintable()
            or " " in tag
        ):
            raise InvalidArgumentError(f"invalid tag {tag!r}")
        out[tag] = None
    return tuple(out)


def coerce_kind(kind: object) -> SessionKind:
    """Turn a ``SessionKind`` or its value into a ``SessionKind``."""
    if isinstance(kind, SessionKind):
        return kind
    try:
        return SessionKind(str(kind).strip().lower())
    except ValueError:
        raise InvalidArgumentError(f"invalid session kind {kind!r}") from None


class SessionSpec(NamedTuple):
    """The checked arguments of a session about to start (see :func:`check_session_args`); a tuple, so
    making one costs a session start next to nothing."""

    name: str
    priority: Priority
    kind: SessionKind
    tags: tuple[str, ...]
    backlog_id: str | None
    description: str
    limits: SessionLimits
    session_id: str | None


def check_session_args(
    name: object,
    *,
    priority: object,
    kind: object,
    tags: Iterable[str],
    backlog_id: object,
    description: object,
    limits: object,
    session_id: object,
    default_limits: SessionLimits,
) -> SessionSpec:
    """Check what :meth:`Engine.start_session` was given and return it cleaned.

    Raises:
        InvalidArgumentError: a bad name, priority, kind, tag, backlog id, description, limit or id
            (:class:`~engine.FieldLimitError`: a description or a tag list too long).
    """
    clean_name = check_name(name)
    clean_priority = coerce_priority(priority)
    clean_kind = coerce_kind(kind)
    clean_tags = check_tags(tags)
    if backlog_id is not None and (not isinstance(backlog_id, str) or not backlog_id.strip()):
        raise InvalidArgumentError(f"invalid backlog id {backlog_id!r}")
    if not isinstance(description, str):
        raise InvalidArgumentError("description must be a string")
    check_length("description", description, DESCRIPTION_MAX)
    check_count("tags", len(clean_tags), LIST_MAX)
    if limits is not None and not isinstance(limits, SessionLimits):
        raise InvalidArgumentError("limits must be a SessionLimits")
    if session_id is not None and (
        not isinstance(session_id, str) or not session_id or not session_id.isprintable()
    ):
        raise InvalidArgumentError(f"invalid session id {session_id!r}")
    return SessionSpec(
        name=clean_name,
        priority=clean_priority,
        kind=clean_kind,
        tags=clean_tags,
        backlog_id=backlog_id.strip() if backlog_id else None,
        description=description,
        limits=limits if limits is not None else default_limits,
        session_id=session_id,
    )
