"""Worklog entries: what a session did, as typed, JSON-ready records. Imports no trio.

A session's worklog is a sequence of entries numbered 1, 2, 3 ... (``seq``) in the order they were
made durable. Each entry has a kind and a payload whose shape the kind fixes:

========================  ================================================================================
kind                      payload
========================  ================================================================================
``session_start``         ``name``, ``backlog_id``, ``kind``, ``priority``, ``tags``, ``repo``, ``branch``,
                          ``head``
``session_stop``          ``reason`` (an :class:`EndReason` value), ``detail``
``files``                 ``created``, ``modified``, ``deleted`` (lists of paths), ``moved`` (list of
                          ``[old, new]``)
``commit``                ``hash``, ``subject``, ``files`` (list of paths), ``branch``
``branch_switch``         ``from``, ``to``, ``head``
``push``                  ``branch``, ``upstream``, ``head``
``note``                  ``text``
========================  ================================================================================
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .._core._errors import InvalidArgumentError, ScribeError
from .._core._limits import NOTE_MAX, check_length

__all__ = [
    "EndReason",
    "EntryKind",
    "FileChanges",
    "WorklogEntry",
    "WorklogError",
    "check_note",
]

#: The longest note a user may append, in characters.
MAX_NOTE_LENGTH: Final = NOTE_MAX


class WorklogError(ScribeError):
    """Root of the worklog's errors (capture, storage, rendering)."""


class EntryKind(enum.StrEnum):
    """What a worklog entry records."""

    SESSION_START = "session_start"
    SESSION_STOP = "session_stop"
    FILES = "files"
    COMMIT = "commit"
    BRANCH_SWITCH = "branch_switch"
    PUSH = "push"
    NOTE = "note"
    #: An agent's tool call (``tool``, ``paths``, ``input``, ``result``, ``ok``, ``agent``).
    TOOL = "tool"


class EndReason(enum.StrEnum):
    """Why a session ended."""

    IDLE_TIMEOUT = "idle_timeout"
    BRANCH_SWITCH = "branch_switch"
    PUSH_COMPLETED = "push_completed"
    REQUESTED = "requested"
    SHUTDOWN = "shutdown"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class WorklogEntry:
    """One durable entry of a session's worklog.

    Attributes:
        session_id: the session it belongs to.
        seq: its number in the session's worklog (1, 2, 3 ...).
        kind: what it records.
        created_at: when it was made (seconds since the epoch).
        payload: the kind's fields (JSON-ready values).
    """

    session_id: str
    seq: int
    kind: EntryKind
    created_at: float
    payload: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not isinstance(self.session_id, str) or not self.session_id:
            raise InvalidArgumentError(f"invalid session id {self.session_id!r}")
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or self.seq < 1:
            raise InvalidArgumentError(f"seq must be an int >= 1, not {self.seq!r}")
        try:
            object.__setattr__(self, "kind", EntryKind(self.kind))
        except ValueError:
            raise InvalidArgumentError(f"unknown worklog entry kind {self.kind!r}") from None
        if (
            isinstance(self.created_at, bool)
            or not isinstance(self.created_at, int | float)
            or not math.isfinite(self.created_at)
        ):
            raise InvalidArgumentError(
                f"created_at must be a finite number, not {self.created_at!r}"
            )
        # stored with microsecond precision: keep the same value in memory
        object.__setattr__(self, "created_at", round(float(self.created_at), 6))
        if not isinstance(self.payload, Mapping):
            raise InvalidArgumentError("payload must be a mapping")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the feed and ``scribe worklog --json`` show)."""
        return {
            "session_id": self.session_id,
            "seq": self.seq,
            "kind": self.kind.value,
            "created_at": self.created_at,
            "payload": dict(self.payload),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorklogEntry:
        """The entry :meth:`as_dict` produced.

        Raises:
            InvalidArgumentError: a field is missing or malformed.
        """
        try:
            return cls(
                session_id=data["session_id"],
                seq=data["seq"],
                kind=data["kind"],
                created_at=data["created_at"],
                payload=data.get("payload") or {},
            )
        except KeyError as exc:
            raise InvalidArgumentError(f"worklog entry lacks {exc.args[0]!r}") from None

    @property
    def files(self) -> tuple[str, ...]:
        """Every path the entry names as touched (files entries and commits)."""
        p = self.payload
        if self.kind is EntryKind.FILES:
            out = [*p.get("created", ()), *p.get("modified", ()), *p.get("deleted", ())]
            out += [pair[1] for pair in p.get("moved", ()) if len(pair) == 2]
            return tuple(dict.fromkeys(str(x) for x in out))
        if self.kind is EntryKind.COMMIT:
            return tuple(str(x) for x in p.get("files", ()))
        return ()


@dataclass(frozen=True, slots=True)
class FileChanges:
    """Files created, modified, deleted and moved in one change batch (after filtering).

    Attributes:
        created, modified, deleted: sorted paths.
        moved: ``(old, new)`` pairs, sorted.
    """

    created: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    moved: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.created or self.modified or self.deleted or self.moved)

    @property
    def count(self) -> int:
        """How many paths changed."""
        return len(self.created) + len(self.modified) + len(self.deleted) + len(self.moved)

    def as_payload(self) -> dict[str, Any]:
        """The payload of a ``files`` entry."""
        return {
            "created": list(self.created),
            "modified": list(self.modified),
            "deleted": list(self.deleted),
            "moved": [list(pair) for pair in self.moved],
        }

    @classmethod
    def fold(cls, changes: Iterable[tuple[str, str, str | None]]) -> FileChanges:
        """Fold ``(kind, path, old_path)`` changes, in the order they happened, into net effects.

        ``kind`` is ``created``, ``modified``, ``deleted`` or ``moved``. A path created then modified
        is created; created then deleted is nothing; deleted then created is modified; a move of a path
        created in the same batch is a creation at the new place.
        """
        # state per current path: "created", "modified", "deleted", or ("moved", origin)
        state: dict[str, str | tuple[str, str]] = {}
        for kind, path, old in changes:
            if kind == "moved" and old is not None:
                before = state.pop(old, None)
                if before == "created":
                    state[path] = "created"
                elif isinstance(before, tuple):
                    state[path] = ("moved", before[1])
                else:
                    state[path] = ("moved", old)
                    if old not in state:
                        state[old] = "gone"
                continue
            before = state.get(path)
            if kind == "created":
                state[path] = "modified" if before in ("deleted", "gone") else "created"
            elif kind == "deleted":
                if before == "created":
                    del state[path]
                elif isinstance(before, tuple):
                    del state[path]
                    origin = before[1]
                    state[origin] = "deleted"
                else:
                    state[path] = "deleted"
            elif before is None or before == "gone":
                state[path] = "modified"
        created: list[str] = []
        modified: list[str] = []
        deleted: list[str] = []
        moved: list[tuple[str, str]] = []
        for path, st in state.items():
            if st == "created":
                created.append(path)
            elif st == "modified":
                modified.append(path)
            elif st == "deleted":
                deleted.append(path)
            elif isinstance(st, tuple):
                if st[1] == path:
                    modified.append(path)
                else:
                    moved.append((st[1], path))
        return cls(
            tuple(sorted(created)),
            tuple(sorted(modified)),
            tuple(sorted(deleted)),
            tuple(sorted(moved)),
        )


def check_note(text: object) -> str:
    """Validate a note a user appends: a non-blank string of at most 20,000 characters.

    Raises:
        InvalidArgumentError: it is not.
    """
    if not isinstance(text, str):
        raise InvalidArgumentError(f"a note must be a string, not {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise InvalidArgumentError("a note must not be empty")
    check_length("note", stripped, MAX_NOTE_LENGTH)
    if "\x00" in stripped:
        raise InvalidArgumentError("a note must not contain NUL characters")
    return stripped
