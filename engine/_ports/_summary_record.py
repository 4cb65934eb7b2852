"""A session summary: what a session did, in a few lists, as a typed, JSON-ready record. Imports no trio.

A summary is folded, never recomputed: version N+1 is version N plus the worklog entries made since
(``metadata["last_seq"]`` says how far version N read). A final summary is made when the session ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._core._errors import InvalidArgumentError

__all__ = ["Summary"]


@dataclass(frozen=True, slots=True)
class Summary:
    """What a session did, in a few lists.

    Attributes:
        session_id: the session.
        version: 1 for the first summary, then one more per update.
        created_at: when this version was made (seconds since the epoch).
        key_ideas: ideas and observations worth remembering.
        decisions: choices made.
        progress: what was done (commits, pushes, completed items), oldest first.
        next_steps: what is still to do.
        files_modified: paths touched during the session, most touched first.
        metadata: counters and facts (``last_seq``, ``entries``, ``commits``, ``notes``, ``branch``,
            ``backlog_id``, ``final``, ``end_reason``, ``started_at``, ``file_touches``, ...).
    """

    session_id: str
    version: int
    created_at: float = field(default_factory=time.time)
    key_ideas: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()
    progress: tuple[str, ...] = ()
    next_steps: tuple[str, ...] = ()
    files_modified: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.session_id, str) or not self.session_id:
            raise InvalidArgumentError(f"invalid session id {self.session_id!r}")
        if isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1:
            raise InvalidArgumentError(f"summary version must be an int >= 1, not {self.version!r}")
        if not isinstance(self.created_at, int | float) or not math.isfinite(self.created_at):
            raise InvalidArgumentError("created_at must be a finite number")
        # stored with microsecond precision: keep the same value in memory
        object.__setattr__(self, "created_at", round(float(self.created_at), 6))
        for name in ("key_ideas", "decisions", "progress", "next_steps", "files_modified"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise InvalidArgumentError(f"{name} must be a list of strings, not one string")
            items = tuple(value)
            if not all(isinstance(x, str) for x in items):
                raise InvalidArgumentError(f"{name} must hold strings only")
            object.__setattr__(self, name, items)
        if not isinstance(self.metadata, Mapping):
            raise InvalidArgumentError("metadata must be a mapping")

    @property
    def last_seq(self) -> int:
        """The last worklog entry this summary has read (0: none)."""
        value = self.metadata.get("last_seq", 0)
        return value if isinstance(value, int) else 0

    @property
    def final(self) -> bool:
        """Whether this is the summary made when the session ended."""
        return bool(self.metadata.get("final", False))

    def payload(self) -> dict[str, Any]:
        """The stored form, without ``session_id``, ``version`` and ``created_at``."""
        return {
            "key_ideas": list(self.key_ideas),
            "decisions": list(self.decisions),
            "progress": list(self.progress),
            "next_steps": list(self.next_steps),
            "files_modified": list(self.files_modified),
            "metadata": dict(self.metadata),
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "session_id": self.session_id,
            "version": self.version,
            "created_at": self.created_at,
            **self.payload(),
        }

    @classmethod
    def from_payload(
        cls, session_id: str, version: int, created_at: float, payload: Mapping[str, Any]
    ) -> Summary:
        """The summary stored as ``payload`` (see :meth:`payload`).

        Raises:
            InvalidArgumentError: the payload is malformed.
        """
        return cls(
            session_id=session_id,
            version=version,
            created_at=created_at,
            key_ideas=tuple(payload.get("key_ideas", ())),
            decisions=tuple(payload.get("decisions", ())),
            progress=tuple(payload.get("progress", ())),
            next_steps=tuple(payload.get("next_steps", ())),
            files_modified=tuple(payload.get("files_modified", ())),
            metadata=dict(payload.get("metadata", {})),
        )
