"""Feed admission limits: a token bucket for client commands and a connection count per token."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import final

from engine import ScribeError

__all__ = ["ConnectionLimitError", "ConnectionLimiter", "TokenBucket"]


class ConnectionLimitError(ScribeError):
    """A token already has as many open feed connections as it is allowed."""


@final
@dataclass(slots=True)
class TokenBucket:
    """A token bucket: ``rate`` tokens per second refill up to ``burst``; each command takes one.

    Time is passed in (any monotonic clock, in seconds) so the bucket is a pure decision.
    """

    rate: float
    burst: float
    _tokens: float = field(init=False)
    _last: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if not self.rate > 0 or not self.burst >= 1:
            raise ValueError(f"need rate > 0 and burst >= 1, not {self.rate!r}, {self.burst!r}")
        self._tokens = float(self.burst)

    def try_take(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if there are enough at time ``now``; return whether it did."""
        if self._last is not None and now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        if self._last is None or now > self._last:
            self._last = now
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False

    @property
    def tokens(self) -> float:
        """Tokens left at the last :meth:`try_take`."""
        return self._tokens


@final
class ConnectionLimiter:
    """Counts open connections per token id and refuses past ``limit``."""

    __slots__ = ("_counts", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, not {limit!r}")
        self.limit = limit
        self._counts: dict[str, int] = {}

    def acquire(self, token_id: str) -> None:
        """Count one more connection for ``token_id``; raise :class:`ConnectionLimitError` if full."""
        n = self._counts.get(token_id, 0)
        if n >= self.limit:
            raise ConnectionLimitError(
                f"token {token_id} already has {n} open connections (limit {self.limit})"
            )
        self._counts[token_id] = n + 1

    def release(self, token_id: str) -> None:
        """Count one connection of ``token_id`` as closed."""
        n = self._counts.get(token_id, 0) - 1
        if n > 0:
            self._counts[token_id] = n
        else:
            self._counts.pop(token_id, None)

    def count(self, token_id: str) -> int:
        """Open connections of ``token_id``."""
        return self._counts.get(token_id, 0)
