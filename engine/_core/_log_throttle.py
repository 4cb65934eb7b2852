"""Logging a failure that repeats once, not once per retry: the first failure of a kind, then its
recovery, with repeats in between at debug. Imports no trio.

A loop that retries (a flusher, a reconnecting client, a refused connection flood) reports each
failure to a :class:`LogThrottle` under a key (what failed: a session, a source, a reason). The
first failure of a key is logged at warning (with the exception, when one is given); its repeats
within ``period`` seconds at debug; after ``period`` seconds the next repeat is logged at warning
again with how many were only logged at debug meanwhile. :meth:`LogThrottle.recovered` logs at info
that a key that had failed works again, and forgets it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from typing import Any, Final

__all__ = ["LogThrottle"]

_MAX_KEYS: Final = 1024


class _Failing:
    __slots__ = ("quiet", "since")

    def __init__(self, since: float) -> None:
        self.since = since
        self.quiet = 0


class LogThrottle:
    """One logger's repeated failures, logged on a change of state (and at most once a ``period``).

    Args:
        logger: where to log.
        period: seconds between two warnings of one key.
        clock: the time source (monotonic seconds).
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        period: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._period = period
        self._clock = clock
        self._failing: dict[Hashable, _Failing] = {}

    def failed(
        self,
        key: Hashable,
        message: str,
        *args: object,
        exc: BaseException | None = None,
        level: int = logging.WARNING,
        extra: dict[str, Any] | None = None,
    ) -> bool:
        """Report a failure of ``key``; whether it was logged at ``level`` (else at debug)."""
        now = self._clock()
        state = self._failing.get(key)
        if state is not None and now - state.since < self._period:
            state.quiet += 1
            self._logger.debug(message, *args, extra=extra)
            return False
        if state is not None and state.quiet:
            message += " (%d more since the last report)"
            args = (*args, state.quiet)
        if state is None and len(self._failing) >= _MAX_KEYS:
            self._failing.pop(next(iter(self._failing)))
        self._failing[key] = _Failing(now)
        info = None if exc is None else (type(exc), exc, exc.__traceback__)
        self._logger.log(level, message, *args, exc_info=info, extra=extra)
        return True

    def recovered(
        self, key: Hashable, message: str, *args: object, extra: dict[str, Any] | None = None
    ) -> None:
        """Report that ``key`` works again: logged at info if it had failed, else nothing."""
        if self._failing.pop(key, None) is not None:
            self._logger.info(message, *args, extra=extra)

    def is_failing(self, key: Hashable) -> bool:
        """Whether ``key`` failed and has not recovered since."""
        return key in self._failing
