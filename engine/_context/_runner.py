"""Running a session's stale context sources: one round of the deadline fan-out per call.

Each source no other caller is fetching is led here (refreshed for changed paths when it can be, else
fetched in full) under its own deadline; a source another caller is fetching is followed, and taken
over when that caller is cancelled. The answers go to the live cache (:mod:`engine._context._cache`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, final

from .._core._gather import SourceOutcome, SourceStatus, gather_sources
from .._core._latency import record_latency
from .._core._log_throttle import LogThrottle
from ._cache import LedFetch, SessionCache
from ._spec import FULL, SourceResult, SourceSpec

if TYPE_CHECKING:
    from ._sources import ContextTarget

__all__ = ["SourceRunner"]

_log = logging.getLogger(__name__)


def _format_error(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        if len(exc.exceptions) == 1:
            return _format_error(exc.exceptions[0])
        parts = [_format_error(e) for e in exc.exceptions[:3]]
        more = len(exc.exceptions) - len(parts)
        return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@final
class SourceRunner:
    """Runs stale sources for the provider and counts what it ran.

    Attributes:
        fetched: fetches led.
        errors: fetches that failed.
        timeouts: fetches that ran out of time.
        refreshed: fetches that tried to update a cached value for changed paths only.
    """

    __slots__ = ("_log", "_sources", "errors", "fetched", "refreshed", "timeouts")

    def __init__(self, sources: Mapping[str, SourceSpec]) -> None:
        self._sources = sources
        self._log = LogThrottle(_log)
        self.fetched = 0
        self.errors = 0
        self.timeouts = 0
        self.refreshed = 0

    async def run(self, cache: SessionCache, names: list[str]) -> dict[str, SourceResult]:
        """Run ``names`` for one session at once: lead the fetch of each source none runs, follow
        the running fetch of the others, and take over one whose leader was cancelled.

        Cancellation: the fetches this call leads are cancelled and ended without a result (their
        followers take over); nothing is returned.
        """
        results: dict[str, SourceResult] = {}
        todo = names
        while todo:
            calls: dict[str, Callable[[], Awaitable[Any]]] = {}
            timeouts: dict[str, float | None] = {}
            led: dict[str, LedFetch] = {}
            for name in todo:
                wait = cache.follow(name)
                if wait is None:
                    fetch = led[name] = cache.lead(self._sources[name])
                    calls[name] = self._call(cache.target, fetch)
                    timeouts[name] = fetch.spec.timeout
                else:
                    calls[name] = wait
            finished: set[str] = set()
            try:
                outcomes = await gather_sources(calls, timeouts=timeouts)
                for name, fetch in led.items():
                    result = self._result(cache.target.session_id, fetch, outcomes[name])
                    cache.finish(fetch, result)
                    finished.add(name)
                    results[name] = result
            finally:
                for name, fetch in led.items():
                    if name not in finished:
                        cache.finish(fetch, None)
            todo = []
            for name, outcome in outcomes.items():
                if name in led:
                    continue
                if outcome.value is None:
                    todo.append(name)  # the leader was cancelled: take over
                else:
                    results[name] = outcome.value
        return results

    def _call(self, target: ContextTarget, fetch: LedFetch) -> Callable[[], Awaitable[Any]]:
        spec = fetch.spec
        self.fetched += 1

        async def call() -> Any:
            value = FULL
            if fetch.paths is not None and spec.refresh is not None:
                self.refreshed += 1
                value = await spec.refresh(target, fetch.previous, fetch.paths)
            if value is FULL:
                value = await spec.fetch(target)
            return value

        return call

    def _result(self, sid: str, fetch: LedFetch, outcome: SourceOutcome[Any]) -> SourceResult:
        name, at, elapsed = fetch.spec.name, fetch.fetched_at, outcome.elapsed
        record_latency("context_source", name, elapsed, ok=outcome.status is SourceStatus.OK)
        extra = {"session": sid, "source": name}
        if outcome.exception is not None:
            self.errors += 1
            error = _format_error(outcome.exception)
            self._log.failed(
                (sid, name),
                "context source %s of session %s failed: %s",
                name,
                sid,
                error,
                exc=outcome.exception,
                extra=extra,
            )
            return SourceResult(name, SourceStatus.ERROR, None, error, elapsed, at)
        if outcome.status is SourceStatus.TIMEOUT:
            self.timeouts += 1
            error = f"no answer within {fetch.spec.timeout:g} s"
            self._log.failed(
                (sid, name),
                "context source %s of session %s timed out: %s",
                name,
                sid,
                error,
                extra=extra,
            )
            return SourceResult(name, SourceStatus.TIMEOUT, None, error, elapsed, at)
        self._log.recovered(
            (sid, name), "context source %s of session %s answers again", name, sid, extra=extra
        )
        return SourceResult(name, SourceStatus.OK, outcome.value, None, elapsed, at)
