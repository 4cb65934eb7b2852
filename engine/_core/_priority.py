"""Session priorities."""

from __future__ import annotations

import enum

from ._errors import InvalidArgumentError

__all__ = ["Priority", "coerce_priority"]


class Priority(enum.IntEnum):
    """How urgently a session's work is admitted. Lower values are served first, so sorting a list of
    priorities puts the most urgent first."""

    HIGH = 0
    MEDIUM = 1
    LOW = 2

    def __str__(self) -> str:
        return self.name.lower()


def coerce_priority(value: object) -> Priority:
    """Turn a ``Priority``, its int value or its name (any case) into a ``Priority``.

    Raises:
        InvalidArgumentError: the value names no priority.
    """
    if isinstance(value, Priority):
        return value
    if isinstance(value, bool):
        raise InvalidArgumentError(f"invalid priority {value!r}")
    if isinstance(value, int):
        try:
            return Priority(value)
        except ValueError:
            raise InvalidArgumentError(f"invalid priority {value!r}") from None
    if isinstance(value, str):
        try:
            return Priority[value.strip().upper()]
        except KeyError:
            raise InvalidArgumentError(f"invalid priority {value!r}") from None
    raise InvalidArgumentError(f"invalid priority {value!r}")
