"""The language model's budget: at most so many calls in any hour (a sliding window). No trio, no I/O.

The caller gives the time (``trio.current_time()`` in the summarizer, so trio's ``MockClock`` drives it
in tests) and does what the answer says: a refused call is not made.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final, final

from engine import InvalidArgumentError

__all__ = ["CALLS_PER_HOUR_MAX", "CallBudget", "CallBudgetStatistics"]

#: The most calls an hour a budget may allow.
CALLS_PER_HOUR_MAX: Final = 100_000
_HOUR: Final = 3600.0


@dataclass(frozen=True, slots=True)
class CallBudgetStatistics:
    """A snapshot of a :class:`CallBudget`.

    Attributes:
        calls_per_hour: the budget.
        in_window: calls granted in the hour before the last decision.
        granted: calls granted since the budget was made.
        refused: calls refused since the budget was made.
    """

    calls_per_hour: int
    in_window: int
    granted: int
    refused: int


@final
class CallBudget:
    """At most ``calls_per_hour`` calls granted in any hour.

    Args:
        calls_per_hour: the budget (from 1 to :data:`CALLS_PER_HOUR_MAX`).

    Raises:
        InvalidArgumentError: a budget that is not such an int.
    """

    def __init__(self, calls_per_hour: int) -> None:
        if (
            isinstance(calls_per_hour, bool)
            or not isinstance(calls_per_hour, int)
            or not 1 <= calls_per_hour <= CALLS_PER_HOUR_MAX
        ):
            raise InvalidArgumentError(
                f"calls_per_hour must be an int from 1 to {CALLS_PER_HOUR_MAX},"
                f" not {calls_per_hour!r}"
            )
        self._limit = calls_per_hour
        self._times: deque[float] = deque()
        self._granted = 0
        self._refused = 0

    def try_spend(self, now: float) -> bool:
        """Grant one call at ``now`` (seconds, any monotonic clock) if the last hour had room."""
        while self._times and self._times[0] <= now - _HOUR:
            self._times.popleft()
        if len(self._times) >= self._limit:
            self._refused += 1
            return False
        self._times.append(now)
        self._granted += 1
        return True

    def statistics(self) -> CallBudgetStatistics:
        """A snapshot of the counters."""
        return CallBudgetStatistics(
            calls_per_hour=self._limit,
            in_window=len(self._times),
            granted=self._granted,
            refused=self._refused,
        )
