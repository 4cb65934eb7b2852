"""The session lifecycle as one table of allowed transitions. Imports no trio."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from ._errors import IllegalTransitionError

__all__ = ["FINAL_STATES", "TRANSITIONS", "SessionKind", "SessionState", "check_transition"]


class SessionState(enum.StrEnum):
    """Where a session is in its life."""

    STARTING = "starting"
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPING = "stopping"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ORPHANED = "orphaned"

    @property
    def is_final(self) -> bool:
        """True for states a session never leaves on its own (completed, failed, cancelled)."""
        return self in FINAL_STATES


class SessionKind(enum.StrEnum):
    """What kind of work a session does."""

    BRAINSTORMING = "brainstorming"
    IMPLEMENTATION = "implementation"
    DEBUG = "debug"
    PLANNING = "planning"


_S = SessionState

#: The states a session never leaves.
FINAL_STATES: frozenset[SessionState] = frozenset({_S.COMPLETED, _S.FAILED, _S.CANCELLED})

#: Every allowed transition. A session's state changes only along these edges.
#: ORPHANED is set by an engine on sessions a dead (or cut-off) process left behind; from there they
#: are closed out, or adopted by another engine (back to ACTIVE, with a new owner).
TRANSITIONS: Mapping[SessionState, frozenset[SessionState]] = {
    _S.STARTING: frozenset({_S.ACTIVE, _S.FAILED, _S.CANCELLED, _S.ORPHANED}),
    _S.ACTIVE: frozenset(
        {_S.PAUSED, _S.STOPPING, _S.COMPLETED, _S.FAILED, _S.CANCELLED, _S.ORPHANED}
    ),
    _S.PAUSED: frozenset({_S.ACTIVE, _S.STOPPING, _S.FAILED, _S.CANCELLED, _S.ORPHANED}),
    _S.STOPPING: frozenset({_S.COMPLETED, _S.FAILED, _S.CANCELLED, _S.ORPHANED}),
    _S.ORPHANED: frozenset({_S.ACTIVE, _S.COMPLETED, _S.FAILED, _S.CANCELLED}),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
}


def check_transition(current: SessionState, target: SessionState) -> SessionState:
    """Return ``target`` if the table allows ``current -> target``.

    Raises:
        IllegalTransitionError: the table has no such edge.
    """
    if target not in TRANSITIONS[current]:
        raise IllegalTransitionError(current, target)
    return target
