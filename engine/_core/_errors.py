"""The engine's error tree: every project error derives from :class:`ScribeError`."""

from __future__ import annotations

__all__ = [
    "AdmissionQueueFullError",
    "EngineClosedError",
    "IllegalTransitionError",
    "InvalidArgumentError",
    "ReentryError",
    "RestartLimitError",
    "ScribeError",
    "SessionClosedError",
    "SessionNotFoundError",
    "TooManyTasksError",
]


class ScribeError(Exception):
    """Root of every error raised by Scribe (engine and adapters)."""


class InvalidArgumentError(ScribeError, ValueError):
    """A caller passed a value the engine cannot accept (a bad priority, limit or name)."""


class IllegalTransitionError(ScribeError):
    """A session was asked to move between two states the lifecycle table does not connect."""

    def __init__(self, current: object, target: object) -> None:
        super().__init__(f"illegal session transition {current!s} -> {target!s}")
        self.current = current
        self.target = target


class EngineClosedError(ScribeError):
    """The engine is shutting down or closed and admits no new sessions or work."""


class SessionClosedError(ScribeError):
    """The session is stopping or final and accepts no new work."""


class SessionNotFoundError(ScribeError, LookupError):
    """No session with the given id exists in this engine."""


class ReentryError(ScribeError):
    """A single-use async context manager was entered twice."""


class AdmissionQueueFullError(ScribeError):
    """Backpressure: an owner already has as many waiters queued on a limiter as it is allowed."""


class TooManyTasksError(ScribeError):
    """Backpressure: a session already runs as many tasks as its limits allow."""


class RestartLimitError(ScribeError):
    """A supervised service restarted more often than its policy allows; the session fails with this."""
