"""The rehydrator: ask every memory source at once, fuse, de-duplicate, pack within a budget.

``rehydrate`` runs one task per :class:`~engine._ports._memory_store.MemorySource` under one deadline (each
source may have a shorter limit of its own). A source that misses its deadline is cancelled and
reported with status ``"timeout"``; one that raises is reported with status ``"error"``; neither
fails the bundle. Results are fused with reciprocal rank fusion (RRF): an item scores
``weight(source, role) / (k + rank)`` summed over every ranking that placed it (full text,
trigram, vector, or its position in the source's list). Near-duplicates (Jaccard similarity of
character 5-gram sets >= 0.6) keep only their best-scored copy. The bundle is then packed
greedily within the token budget: pinned items first (in source order), then evidence by score.

Token estimate: ``ceil(chars / 4)`` (:func:`estimate_tokens`), charged per rendered line
including its newline, so the estimate of the whole bundle text never exceeds the budget.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, final

import trio

from .._core._errors import InvalidArgumentError, ScribeError
from .._ports._memory_records import Evidence, SourceQuery
from .._ports._memory_store import MemorySource
from .._ports._validation import canonical_json
from ._fusion import RRF_K, rrf_score

__all__ = [
    "ROLES",
    "Bundle",
    "BundleItem",
    "CallableSource",
    "DropReason",
    "Dropped",
    "GitContextSource",
    "RehydrateError",
    "Rehydrator",
    "RetrievalCache",
    "SourceReport",
    "SourceStatus",
    "estimate_tokens",
    "fuse",
    "jaccard",
    "pack",
    "rehydrate",
    "render_item",
    "shingles",
]


class RehydrateError(ScribeError):
    """The rehydrator was configured wrongly (source names, limits)."""


ROLES: tuple[str, ...] = ("planner", "implementer", "coder", "researcher", "reviewer")

# Per-role weight of each source kind in the fusion (missing: 1.0).
_ROLE_WEIGHTS: Mapping[str, Mapping[str, float]] = {
    "planner": {"decisions": 1.5, "summaries": 1.5, "facts": 1.2, "git": 0.7},
    "implementer": {"worklogs": 1.3, "decisions": 1.2, "git": 1.2},
    "coder": {"git": 1.5, "worklogs": 1.3, "summaries": 0.8},
    "researcher": {"messages": 1.3, "summaries": 1.2, "git": 0.6},
    "reviewer": {"decisions": 1.5, "git": 1.3, "worklogs": 1.2},
}


def estimate_tokens(text: str) -> int:
    """The token estimate used for budgets: ``ceil(len(text) / 4)``."""
    return -(-len(text) // 4)


def render_item(evidence: Evidence) -> str:
    """One bundle line: ``[source:id] text``."""
    return f"[{evidence.citation}] {evidence.text}"


_SPACE = re.compile(r"\s+")


def shingles(text: str, n: int = 5) -> frozenset[str]:
    """Character ``n``-grams of ``text`` lower-cased with whitespace collapsed.

    A text shorter than ``n`` is its own single shingle.
    """
    norm = _SPACE.sub(" ", text.lower()).strip()
    if len(norm) < n:
        return frozenset({norm})
    return frozenset(norm[i : i + n] for i in range(len(norm) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two sets (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    inter = len(a & b) if len(a) <= len(b) else len(b & a)
    return inter / (len(a) + len(b) - inter)


def _near_duplicate(a: frozenset[str], b: frozenset[str], threshold: float) -> bool:
    # |A & B| / |A | B| <= min/max, so pairs of very different sizes are never near-duplicates.
    small, large = (len(a), len(b)) if len(a) <= len(b) else (len(b), len(a))
    if large and small < threshold * large:
        return False
    return jaccard(a, b) >= threshold


# ------------------------------------------------------------------------------------- reports


class SourceStatus(enum.StrEnum):
    """Outcome of one source in one rehydration."""

    OK = "ok"
    TIMEOUT = "timeout"
    ERROR = "error"


class DropReason(enum.StrEnum):
    """Why a candidate is not in the bundle."""

    DUPLICATE = "duplicate"
    BUDGET = "budget"


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What one source did: status, seconds taken (up to the deadline), items returned."""

    name: str
    status: SourceStatus
    elapsed: float
    count: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Dropped:
    """A candidate left out, and why (``duplicate_of`` is the citation of the kept copy)."""

    citation: str
    reason: DropReason
    tokens: int
    duplicate_of: str | None = None


@dataclass(frozen=True, slots=True)
class BundleItem:
    """An item of the bundle with its fused score and token cost."""

    evidence: Evidence
    score: float
    tokens: int

    @property
    def citation(self) -> str:
        """``source:id`` of the evidence."""
        return self.evidence.citation

    @property
    def pinned(self) -> bool:
        """Whether this item came in as pinned."""
        return self.evidence.pinned


@dataclass(frozen=True, slots=True)
class Bundle:
    """A packed, token-budgeted memory bundle.

    Attributes:
        query: What was asked.
        session_id: The session it was asked for (or ``None``).
        role: The role it was packed for (or ``None``).
        token_budget: The budget.
        tokens: Tokens charged for :attr:`items` (``<= token_budget``).
        items: Pinned items first, then evidence by fused score.
        sources: Per-source status and time.
        dropped: Candidates left out (duplicates, over budget).
        digest: SHA-256 of :attr:`text`.
        elapsed: Seconds the whole rehydration took.
        cached: Whether it came from the retrieval cache (then the reports are those of the
            rehydration that filled the cache).
    """

    query: str
    session_id: str | None
    role: str | None
    token_budget: int
    tokens: int
    items: tuple[BundleItem, ...]
    sources: tuple[SourceReport, ...]
    dropped: tuple[Dropped, ...]
    digest: str
    elapsed: float
    cached: bool = False

    @property
    def text(self) -> str:
        """The bundle as text: one ``[source:id] text`` line per item."""
        return "\n".join(render_item(item.evidence) for item in self.items)

    @property
    def pinned(self) -> tuple[BundleItem, ...]:
        """The pinned items."""
        return tuple(item for item in self.items if item.pinned)

    @property
    def evidence(self) -> tuple[BundleItem, ...]:
        """The ranked (not pinned) items."""
        return tuple(item for item in self.items if not item.pinned)

    def source(self, name: str) -> SourceReport:
        """The report of source ``name`` (``KeyError`` if it was not asked)."""
        for report in self.sources:
            if report.name == name:
                return report
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible view (for the CLI and feeds)."""
        return {
            "query": self.query,
            "session_id": self.session_id,
            "role": self.role,
            "token_budget": self.token_budget,
            "tokens": self.tokens,
            "digest": self.digest,
            "elapsed_ms": round(self.elapsed * 1000, 3),
            "cached": self.cached,
            "items": [
                {
                    "citation": item.citation,
                    "source": item.evidence.source,
                    "id": item.evidence.id,
                    "pinned": item.pinned,
                    "score": item.score,
                    "tokens": item.tokens,
                    "text": item.evidence.text,
                    "ranks": dict(item.evidence.ranks),
                    "metadata": dict(item.evidence.metadata),
                }
                for item in self.items
            ],
            "sources": [
                {
                    "name": r.name,
                    "status": r.status.value,
                    "elapsed_ms": round(r.elapsed * 1000, 3),
                    "count": r.count,
                    "error": r.error,
                }
                for r in self.sources
            ],
            "dropped": [
                {
                    "citation": d.citation,
                    "reason": d.reason.value,
                    "tokens": d.tokens,
                    "duplicate_of": d.duplicate_of,
                }
                for d in self.dropped
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, cached: bool = False) -> Bundle:
        """Rebuild a bundle from :meth:`to_dict` output.

        Raises:
            RehydrateError: ``data`` is not a bundle's dict.
        """
        try:
            items = tuple(
                BundleItem(
                    Evidence(
                        source=i["source"],
                        id=i["id"],
                        text=i["text"],
                        ranks=dict(i.get("ranks", {})),
                        pinned=bool(i["pinned"]),
                        metadata=dict(i.get("metadata", {})),
                    ),
                    float(i["score"]),
                    int(i["tokens"]),
                )
                for i in data["items"]
            )
            return cls(
                query=data["query"],
                session_id=data["session_id"],
                role=data["role"],
                token_budget=int(data["token_budget"]),
                tokens=int(data["tokens"]),
                items=items,
                sources=tuple(
                    SourceReport(
                        r["name"],
                        SourceStatus(r["status"]),
                        float(r["elapsed_ms"]) / 1000,
                        int(r["count"]),
                        r["error"],
                    )
                    for r in data["sources"]
                ),
                dropped=tuple(
                    Dropped(
                        d["citation"], DropReason(d["reason"]), int(d["tokens"]), d["duplicate_of"]
                    )
                    for d in data["dropped"]
                ),
                digest=data["digest"],
                elapsed=float(data["elapsed_ms"]) / 1000,
                cached=cached,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RehydrateError(f"not a bundle: {exc!r}") from None


# ------------------------------------------------------------------------ fusion and packing


@dataclass(frozen=True, slots=True)
class _Scored:
    evidence: Evidence
    score: float


def _role_weight(role: str | None, source: str, weights: Mapping[str, float] | None) -> float:
    if weights is not None and source in weights:
        return weights[source]
    if role is None:
        return 1.0
    return _ROLE_WEIGHTS.get(role, {}).get(source, 1.0)


def fuse(
    results: Mapping[str, Sequence[Evidence]],
    *,
    k: int = RRF_K,
    role: str | None = None,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[Evidence, float]]:
    """Reciprocal rank fusion of every source's rankings.

    Args:
        results: Items per source name, best first.
        k: The RRF constant (60 in the original paper).
        role: Weights sources for a role (see ``ROLES``).
        weights: Explicit per-source weights (override the role's).

    Returns:
        ``(evidence, score)`` for every distinct ``source:id``: pinned items first in source
        order, then the rest by descending score (ties by citation, so the order is stable).
        A repeated ``source:id`` keeps its first occurrence.
    """
    seen: set[str] = set()
    pinned: list[tuple[Evidence, float]] = []
    ranked: list[tuple[Evidence, float]] = []
    for name, items in results.items():
        weight = _role_weight(role, name, weights)
        for position, evidence in enumerate(items, start=1):
            if evidence.citation in seen:
                continue
            seen.add(evidence.citation)
            ranks = evidence.ranks or {name: position}
            score = rrf_score(ranks, k=k, weight=weight)
            (pinned if evidence.pinned else ranked).append((evidence, score))
    ranked.sort(key=lambda pair: (-pair[1], pair[0].citation))
    return pinned + ranked


def pack(
    candidates: Iterable[tuple[Evidence, float]],
    *,
    token_budget: int,
    dedup_threshold: float = 0.6,
) -> tuple[list[BundleItem], list[Dropped]]:
    """De-duplicate and pack candidates (already in priority order) within ``token_budget``.

    Candidates are taken greedily in order. One whose line cost does not fit in what is left of
    the budget is dropped for budget (smaller later items may still fit); one whose 5-gram
    Jaccard similarity with an already kept item is at least ``dedup_threshold`` (or whose
    ``source:id`` was seen) is dropped as a duplicate; the rest are kept.
    """
    kept: list[BundleItem] = []
    dropped: list[Dropped] = []
    considered: list[tuple[str, frozenset[str]]] = []
    seen: set[str] = set()
    used = 0
    for evidence, score in candidates:
        line = render_item(evidence)
        cost = estimate_tokens(line + "\n")
        if evidence.citation in seen:
            dropped.append(
                Dropped(evidence.citation, DropReason.DUPLICATE, cost, evidence.citation)
            )
            continue
        seen.add(evidence.citation)
        if used + cost > token_budget:
            dropped.append(Dropped(evidence.citation, DropReason.BUDGET, cost))
            continue
        grams = shingles(evidence.text)
        twin = next((c for c, g in considered if _near_duplicate(grams, g, dedup_threshold)), None)
        if twin is not None:
            dropped.append(Dropped(evidence.citation, DropReason.DUPLICATE, cost, twin))
            continue
        considered.append((evidence.citation, grams))
        used += cost
        kept.append(BundleItem(evidence, score, cost))
    return kept, dropped


# ------------------------------------------------------------------------------- rehydration


@dataclass(frozen=True, slots=True)
class _Outcome:
    report: SourceReport
    items: Sequence[Evidence]


async def _ask(
    source: MemorySource, query: SourceQuery, deadline: float, out: dict[str, _Outcome]
) -> None:
    name = source.name
    start = trio.current_time()
    items: Sequence[Evidence] = ()
    error: str | None = None
    with trio.move_on_at(deadline) as scope:
        try:
            items = await source.search(query)
        except Exception as exc:  # reported in the bundle, never raised: one source never fails all
            error = f"{type(exc).__name__}: {exc}"
    elapsed = trio.current_time() - start
    if scope.cancelled_caught:
        out[name] = _Outcome(SourceReport(name, SourceStatus.TIMEOUT, elapsed, 0), ())
        return
    if error is not None:
        out[name] = _Outcome(SourceReport(name, SourceStatus.ERROR, elapsed, 0, error), ())
        return
    cleaned: list[Evidence] = []
    for evidence in list(items)[: query.limit]:
        if not isinstance(evidence, Evidence):
            error = f"TypeError: the source returned {type(evidence).__name__}, not Evidence"
            out[name] = _Outcome(SourceReport(name, SourceStatus.ERROR, elapsed, 0, error), ())
            return
        if evidence.source != name:
            evidence = dataclasses.replace(evidence, source=name)
        cleaned.append(evidence)
    out[name] = _Outcome(SourceReport(name, SourceStatus.OK, elapsed, len(cleaned)), cleaned)


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
    outcomes: dict[str, _Outcome] = {}
    async with trio.open_nursery() as nursery:
        for source in sources:
            own = (source_timeouts or {}).get(source.name)
            source_deadline = deadline if own is None else min(deadline, start + own)
            limit = (limits or {}).get(source.name, default_limit)
            nursery.start_soon(
                _ask,
                source,
                SourceQuery(text=query, session_id=session, role=role, limit=limit),
                source_deadline,
                outcomes,
            )
    results = {s.name: outcomes[s.name].items for s in sources}
    fused = fuse(results, k=rrf_k, role=role, weights=weights)
    items, dropped = pack(fused, token_budget=token_budget, dedup_threshold=dedup_threshold)
    text = "\n".join(render_item(item.evidence) for item in items)
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
        elapsed=trio.current_time() - start,
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
            limits=self._limits,
            source_timeouts=self._timeouts,
            default_limit=self._default_limit,
        )
        if key is not None and self._cache is not None:
            if all(r.status is SourceStatus.OK for r in bundle.sources):
                await self._cache.cache_put(key, bundle.to_dict(), ttl=self._cache_ttl)
        return bundle


# ------------------------------------------------------------------------------ simple sources


@final
class CallableSource:
    """A memory source backed by an async callable ``fn(query) -> evidence``."""

    def __init__(
        self, name: str, fn: Callable[[SourceQuery], Awaitable[Sequence[Evidence]]]
    ) -> None:
        self._name = name
        self._fn = fn

    @property
    def name(self) -> str:
        """The source name."""
        return self._name

    async def search(self, query: SourceQuery) -> Sequence[Evidence]:
        """Call the function.

        Cancellation: propagates into the function.
        """
        return await self._fn(query)


_TERM = re.compile(r"[a-z0-9_./-]{2,}")


@final
class GitContextSource:
    """Git context (branch, status, log, diff stat, ...) as evidence, from a callable.

    ``fetch(session_id)`` returns named sections (``{"branch": "...", "log": "..."}``), for
    example from the git adapter. Sections sharing words with the query rank first; the rest
    keep the order ``fetch`` gave them. Empty sections are skipped.
    """

    def __init__(
        self,
        fetch: Callable[[str | None], Awaitable[Mapping[str, str]]],
        *,
        name: str = "git",
    ) -> None:
        self._fetch = fetch
        self._name = name

    @property
    def name(self) -> str:
        """The source name."""
        return self._name

    async def search(self, query: SourceQuery) -> Sequence[Evidence]:
        """Fetch the sections and rank them against the query.

        Cancellation: propagates into ``fetch``.
        """
        sections = await self._fetch(query.session_id)
        terms = set(_TERM.findall(query.text.lower()))
        scored = []
        for order, (section, text) in enumerate(sections.items()):
            if not text.strip():
                continue
            overlap = len(terms & set(_TERM.findall(text.lower())))
            scored.append((-overlap, order, section, text))
        scored.sort()
        return [
            Evidence(source=self._name, id=section, text=f"{section}: {text.strip()}")
            for _, _, section, text in scored[: query.limit]
        ]
