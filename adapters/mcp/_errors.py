"""What a failed call tells the agent: what went wrong and what to do about it, in one message."""

from __future__ import annotations

from typing import Final

import msgspec

from engine import visible

from ..control._protocol import ControlProtocolError, DaemonError, DaemonNotRunningError

__all__ = ["describe_failure", "describe_invalid"]

#: What to do, by the type of error the daemon answered.
_ADVICE: Final = {
    "SessionNotFoundError": "list_sessions shows the sessions there are",
    "InvalidArgumentError": "correct the arguments and call again",
    "ControlProtocolError": "correct the arguments and call again",
    "FieldLimitError": "shorten it and call again",
    "MemoryNotFoundError": "recall shows what memory holds",
    "DatabaseUnavailableError": "the daemon is restarting its database: call again in a moment",
    "DatabaseError": "the database failed: call again in a moment; `scribe status` tells more",
    "QueryCancelledError": "the database was slow to answer: call again in a moment",
    "NotARepositoryError": "give the path of a git work tree",
    "DecisionStateError": "recall shows the decision and its state",
    "AdmissionQueueFullError": "the daemon is busy: call again in a moment",
    "ControlLimitError": "the daemon is busy: call again in a moment",
}


def describe_invalid(tool: str, exc: msgspec.ValidationError) -> str:
    """The message for arguments that do not match the tool's input schema."""
    why = str(exc).replace("`$.", "`").replace("at `$`", "in the arguments")
    return visible(f"{tool}: bad arguments: {why}. Correct them and call again.")


def describe_failure(tool: str, exc: BaseException) -> str | None:
    """The message for a call the daemon could not answer, or None if ``exc`` is not one of
    those (a bug, to be raised)."""
    if isinstance(exc, DaemonNotRunningError):
        return visible(
            f"{tool}: the Scribe daemon is not reachable: {exc}. Once it runs, call again: "
            "this server reconnects by itself."
        )
    if isinstance(exc, TimeoutError):
        return visible(f"{tool}: {exc}. The daemon is busy or stuck: call again in a moment.")
    if isinstance(exc, DaemonError):
        advice = _ADVICE.get(exc.type, "`scribe status` and the daemon's log tell more")
        return visible(f"{tool}: {exc.message or exc.type} ({exc.type}); {advice}.")
    if isinstance(exc, ControlProtocolError):
        return visible(f"{tool}: the daemon's answer was malformed ({exc}); is it the same version?")
    return None
