"""Pairing the two halves of a rename: an ``IN_MOVED_FROM`` waits a moment for its ``IN_MOVED_TO``."""

from __future__ import annotations

import math
from typing import Final, final

import trio

__all__ = ["MOVE_PAIR_WAIT", "MovePairs"]

MOVE_PAIR_WAIT: Final = 0.002  # how long an IN_MOVED_FROM waits for its IN_MOVED_TO


@final
class MovePairs:
    """Paths moved away, waiting for the other half of their rename (same cookie).

    A half that finds its pair is one ``moved`` change; one that waits longer than ``wait`` seconds
    means the path left the tree.
    """

    def __init__(self, wait: float = MOVE_PAIR_WAIT) -> None:
        self._wait = wait
        self._waiting: dict[int, tuple[str, float]] = {}  # cookie -> (rel, deadline)

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def moved_from(self, cookie: int, rel: str) -> None:
        """``rel`` was moved away (at trio's current time): wait for its other half."""
        self._waiting[cookie] = (rel, trio.current_time() + self._wait)

    def moved_to(self, cookie: int) -> str | None:
        """The path the rename with ``cookie`` came from, or None when it came from outside."""
        source = self._waiting.pop(cookie, None)
        return None if source is None else source[0]

    def expired(self, now: float) -> list[str]:
        """The paths whose wait is over at ``now`` (moved out of the tree), no longer waiting."""
        out = []
        for cookie, (rel, deadline) in list(self._waiting.items()):
            if deadline <= now:
                del self._waiting[cookie]
                out.append(rel)
        return out

    def deadline(self) -> float:
        """When the next wait is over (``math.inf`` when nothing waits)."""
        return min((d for _, d in self._waiting.values()), default=math.inf)

    def clear(self) -> None:
        """Stop waiting (a full scan settles every unpaired half)."""
        self._waiting.clear()
