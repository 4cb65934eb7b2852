"""The rehydrator: ask every memory source at once, fuse, de-duplicate, pack within a budget.

``rehydrate`` asks every :class:`~engine._ports._memory_store.MemorySource` through the one deadline
fan-out (:func:`engine._core._gather.gather_sources`) under one deadline (each source may have a
shorter limit of its own). A source that misses its deadline is cancelled and reported with status
``"timeout"``; one that raises is reported with status ``"error"``; neither fails the bundle. Results
are fused with reciprocal rank fusion (:func:`engine._memory._fusion.fuse`): an item scores
``weight(source, role) / (k + rank)`` summed over every ranking that placed it (full text, trigram,
vector, or its position in the source's list); a ranking whose scores mean the same in several
sources (the store's three, over messages and decisions) is ranked across them first, so one
source's weak best match does not count as much as another's strong one. Near-duplicates (Jaccard similarity of character
5-gram sets >= 0.6, :mod:`engine._memory._near_duplicates`) keep only their best-scored copy. The bundle
is then packed greedily within the token budget (:func:`engine._memory._packing.pack`): pinned items
first (in source order), then evidence by score.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, final

import trio

from .._core._errors import InvalidArgumentError
from .._core._gather import SourceOutcome, SourceStatus, gather_sources
from .._core._latency import record_latency
from .._core._limits import QUERY_MAX, check_length
from .._core._log_throttle import LogThrottle
from .._ports._memory_records import Evidence, SourceQuery
from .._ports._memory_store import MemorySource
from .._ports._validation import canonical_json
from ._bundle import Bundle, RehydrateError, SourceReport, render_item
from ._fusion import ROLES, RRF_K, fuse
from ._packing import pack

__all__ = ["Rehydrator", "RetrievalCache", "rehydrate"]

_log = logging.getLogger(__name__)
#: A failing memory source is logged when it starts failing (and once a minute while it does).
_THROTTLE = LogThrottle(_log)


@dataclass(frozen=True, slots=True)
class _Outcome:
    report: SourceReport
    items: Sequence[Evidence]


def _outcome(o: SourceOutcome[Sequence[Evidence]], limit: int) -> _Outcome:
    name = o.name
    if o.status is SourceStatus.TIMEOUT:
        return _Outcome(SourceReport(name, SourceStatus.TIMEOUT, o.elapsed, 0), ())
    if o.status is SourceStatus.ERROR:
        error = f"{type(o.exception).__name__}: {o.exception}"
        _THROTTLE.failed(
            name,
            "memory source %s failed: %s",
            name,
            error,
            exc=o.exception,
            extra={"source": name},
        )
        return _Outcome(SourceReport(name, SourceStatus.ERROR, o.elapsed, 0, error), ())
    returned: Any = o.value
    try:
        listed = list(returned)
    except TypeError:
        error = f"TypeError: the source returned {type(returned).__name__}, not a list of Evidence"
        return _Outcome(SourceReport(name, SourceStatus.ERROR, o.elapsed, 0, error), ())
    cleaned: list[Evidence] = []
    for evidence in listed[:limit]:
        if not isinstance(evidence, Evidence):
            error = f"TypeError: the source returned {type(evidence).__name__}, not Evidence"
            return _Outcome(SourceReport(name, SourceStatus.ERROR, o.elapsed, 0, error), ())
        if evidence.source != name:
            evidence = dataclasses.replace(evidence, source=name)
        cleaned.append(evidence)
    return _Outcome(SourceReport(name, SourceStatus.OK, o.elapsed, len(cleaned)), cleaned)


def _check_names(sources: Sequence[MemorySource]) -> None:
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise RehydrateError(f"memory source names must be unique, got {names}")
    for name in names:
        if not name or ":" in name:
            raise RehydrateError(f"bad memory source name {name!r} (non-empty, no ':')")


async def rehydrate(
    query: str,
    *,
    sources: Sequence[MemorySource],
    session: str | None = None,
    role: str | None = None,
    token_budget: int = 2000,
    timeout: float = 0.25,
    deadline: float | None = None,
    repo: str | None = None,
    limits: Mapping[str, int] | None = None,
    source_timeouts: Mapping[str, float] | None = None,
    default_limit: int = 20,
    weights: Mapping[str, float] | None = None,
    rrf_k: int = RRF_K,
    dedup_threshold: float = 0.6,
) -> Bundle:
    """Gather memory for ``query`` from every source in parallel and pack a bundle.

    Args:
        query: What the bundle is for (non-empty).
        sources: The memory sources (unique names).
        session: Engine session id passed to sources (``None``: all sessions).
        repo: The repository (work tree root) passed to sources, whose memory of every session
            on it is wanted (``None``: no such filter).
        role: One of ``ROLES`` (weights sources), or ``None``.
        token_budget: Most tokens the bundle may take (``ceil(chars/4)`` estimate).
        timeout: Seconds from now until the common deadline (used unless ``deadline`` given).
        deadline: The common deadline as an absolute ``trio.current_time()`` value.
        limits: Per-source item limits (default ``default_limit``).
        source_timeouts: Per-source time limits in seconds, capped by the common deadline.
        default_limit: Items asked of a source without its own limit.
        weights: Per-source fusion weights (override the role's).
        rrf_k: The reciprocal rank fusion constant.
        dedup_threshold: 5-gram Jaccard similarity from which two items are duplicates.

    Returns:
        The bundle, including a report per source (``ok``, ``timeout`` or ``error``).

    Raises:
        InvalidArgumentError: Bad query, role, budget, limits or times.
        RehydrateError: Duplicate or bad source names.

    Cancellation: every source is cancelled and nothing is returned.
    """
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgumentError("query must be a non-empty string")
    check_length("query", query, QUERY_MAX)
    if role is not None and role not in ROLES:
        raise InvalidArgumentError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
    if isinstance(token_budget, bool) or not isinstance(token_budget, int) or token_budget < 1:
        raise InvalidArgumentError(f"token_budget must be a positive int, got {token_budget!r}")
    if deadline is None:
        if not timeout > 0:
            raise InvalidArgumentError(f"timeout must be positive seconds, got {timeout!r}")
        deadline = trio.current_time() + timeout
    if default_limit < 1 or any(v < 1 for v in (limits or {}).values()):
        raise InvalidArgumentError("source limits must be >= 1")
    if any(not v > 0 for v in (source_timeouts or {}).values()):
        raise InvalidArgumentError("source timeouts must be positive seconds")
    if not 0.0 < dedup_threshold <= 1.0:
        raise InvalidArgumentError("dedup_threshold must be in (0, 1]")
    _check_names(sources)

    start = trio.current_time()
    asked = {
        s.name: SourceQuery(
            text=query,
            session_id=session,
            role=role,
            limit=(limits or {}).get(s.name, default_limit),
            repo=repo,
        )
        for s in sources
    }
    gathered = await gather_sources(
        {s.name: functools.partial(s.search, asked[s.name]) for s in sources},
        timeouts={n: t for n, t in (source_timeouts or {}).items() if n in asked},
        deadline=deadline,
    )
    outcomes = {name: _outcome(o, asked[name].limit) for name, o in gathered.items()}
    for outcome in outcomes.values():
        report = outcome.report
        record_latency(
            "memory_source", report.name, report.elapsed, ok=report.status is SourceStatus.OK
        )
    results = {s.name: outcomes[s.name].items for s in sources}
    fused = fuse(results, k=rrf_k, role=role, weights=weights)
    items, dropped = pack(fused, token_budget=token_budget, dedup_threshold=dedup_threshold)
    text = "\n".join(render_item(item.evidence) for item in items)
    elapsed = trio.current_time() - start
    record_latency("rehydrate", "", elapsed)
    return Bundle(
        query=query,
        session_id=session,
        role=role,
        token_budget=token_budget,
        tokens=sum(item.tokens for item in items),
        items=tuple(items),
        sources=tuple(outcomes[s.name].report for s in sources),
        dropped=tuple(dropped),
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        elapsed=elapsed,
    )


class RetrievalCache(Protocol):
    """Where a :class:`Rehydrator` keeps bundles for a while (a :class:`MemoryStore` is one)."""

    async def cache_get(self, key: str) -> Any | None:
        """The live value for ``key``, or ``None``."""
        ...

    async def cache_put(self, key: str, value: Any, *, ttl: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds."""
        ...


@final
class Rehydrator:
    """A configured set of sources: ``await rehydrator.rehydrate(query, session=..., ...)``.

    Args:
        sources: The memory sources (unique names).
        limits: Per-source item limits.
        source_timeouts: Per-source time limits in seconds.
        default_limit: Items asked of a source without its own limit.
        timeout: Default seconds until the common deadline.
        token_budget: Default budget.
        cache: Keep bundles in this retrieval cache; a bundle is cached only when every source
            answered (a degraded bundle is never served again).
        cache_ttl: Seconds a cached bundle is served.
    """

    def __init__(
        self,
        sources: Sequence[MemorySource],
        *,
        limits: Mapping[str, int] | None = None,
        source_timeouts: Mapping[str, float] | None = None,
        default_limit: int = 20,
        timeout: float = 0.25,
        token_budget: int = 2000,
        cache: RetrievalCache | None = None,
        cache_ttl: float = 30.0,
    ) -> None:
        _check_names(sources)
        if not cache_ttl > 0:
            raise InvalidArgumentError("cache_ttl must be positive seconds")
        self._cache = cache
        self._cache_ttl = cache_ttl
        self._sources = tuple(sources)
        self._limits = dict(limits or {})
        self._timeouts = dict(source_timeouts or {})
        self._default_limit = default_limit
        self._timeout = timeout
        self._budget = token_budget

    @property
    def sources(self) -> tuple[MemorySource, ...]:
        """The configured sources."""
        return self._sources

    async def rehydrate(
        self,
        query: str,
        *,
        session: str | None = None,
        role: str | None = None,
        token_budget: int | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        repo: str | None = None,
    ) -> Bundle:
        """:func:`rehydrate` with this object's sources and defaults (and its cache, if any).

        Cancellation: every source is cancelled and nothing is returned (nor cached).
        """
        budget = self._budget if token_budget is None else token_budget
        key = None
        if self._cache is not None:
            key = (
                "rehydrate:"
                + hashlib.sha256(
                    canonical_json(
                        {
                            "query": query,
                            "session": session,
                            "repo": repo,
                            "role": role,
                            "budget": budget,
                            "sources": [s.name for s in self._sources],
                            "limits": self._limits,
                            "default_limit": self._default_limit,
                        }
                    ).encode()
                ).hexdigest()
            )
            hit = await self._cache.cache_get(key)
            if hit is not None:
                return Bundle.from_dict(hit, cached=True)
        bundle = await rehydrate(
            query,
            sources=self._sources,
            session=session,
            role=role,
            token_budget=budget,
            timeout=self._timeout if timeout is None else timeout,
            deadline=deadline,
            repo=repo,
            limits=self._limits,
            source_timeouts=self._timeouts,
            default_limit=self._default_limit,
        )
        if key is not None and self._cache is not None:
            if all(r.status is SourceStatus.OK for r in bundle.sources):
                await self._cache.cache_put(key, bundle.to_dict(), ttl=self._cache_ttl)
        return bundle
