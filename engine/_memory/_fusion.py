"""Reciprocal rank fusion: the one place where several rankings of one set of items become one order.

Stores and sources return ranked lists (each item with its rank in every ranking that found it); the
engine fuses them here. An item scores ``sum(weight / (k + rank))`` over the rankings that found it
(Cormack, Clarke and Buettcher, 2009; ``k = 60`` as in the paper). :func:`fuse` does it for the
rehydrator's evidence, weighting each source for the role asked (:data:`ROLES`), and ranking
together the items of every source that scores a ranking alike (:func:`pooled_ranks`). Imports
no trio.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Final, TypeVar

from .._core._errors import InvalidArgumentError
from .._ports._memory_records import Evidence

__all__ = ["ROLES", "RRF_K", "fuse", "fuse_ranks", "pooled_ranks", "ranks_of", "rrf_score"]

#: The RRF constant of the original paper.
RRF_K: Final = 60

_K = TypeVar("_K", bound=Hashable)


def rrf_score(ranks: Mapping[str, int], *, k: int = RRF_K, weight: float = 1.0) -> float:
    """The fused score of one item from its 1-based rank in each ranking (ranks below 1 are ignored)."""
    if k < 0:
        raise InvalidArgumentError(f"the RRF constant must be >= 0, not {k}")
    return sum(weight / (k + rank) for rank in ranks.values() if rank >= 1)


def fuse_ranks(
    ranks: Mapping[_K, Mapping[str, int]],
    *,
    k: int = RRF_K,
    tiebreak: Callable[[_K], object] | None = None,
    limit: int | None = None,
) -> list[tuple[_K, float]]:
    """Items best first by reciprocal rank fusion of their ranks.

    Args:
        ranks: For each item, its 1-based rank in every ranking that found it.
        k: The RRF constant.
        tiebreak: A sort key for items of equal score (default: first seen first), so the order is stable.
        limit: Keep at most this many (None: all).

    Returns:
        ``(item, score)`` pairs, highest score first.
    """
    scored = [(item, rrf_score(r, k=k)) for item, r in ranks.items()]
    if tiebreak is None:
        order = {item: i for i, item in enumerate(ranks)}
        scored.sort(key=lambda pair: (-pair[1], order[pair[0]]))
    else:
        key = tiebreak
        scored.sort(key=lambda pair: (-pair[1], key(pair[0])))
    return scored if limit is None else scored[:limit]


def ranks_of(rankings: Mapping[str, Iterable[_K]]) -> dict[_K, dict[str, int]]:
    """Each item's 1-based rank in every named ranking (lists best first) that holds it."""
    out: dict[_K, dict[str, int]] = {}
    for name, items in rankings.items():
        for position, item in enumerate(items, start=1):
            out.setdefault(item, {}).setdefault(name, position)
    return out


#: The roles a rehydration may be asked for; each weights the sources its own way.
ROLES: tuple[str, ...] = ("planner", "implementer", "coder", "researcher", "reviewer")

# Per-role weight of each source kind in the fusion (missing: 1.0).
_ROLE_WEIGHTS: Mapping[str, Mapping[str, float]] = {
    "planner": {"decisions": 1.5, "summaries": 1.5, "facts": 1.2, "git": 0.7},
    "implementer": {"worklogs": 1.3, "decisions": 1.2, "git": 1.2},
    "coder": {"git": 1.5, "worklogs": 1.3, "summaries": 0.8},
    "researcher": {"messages": 1.3, "summaries": 1.2, "git": 0.6},
    "reviewer": {"decisions": 1.5, "git": 1.3, "worklogs": 1.2},
}


def _role_weight(role: str | None, source: str, weights: Mapping[str, float] | None) -> float:
    if weights is not None and source in weights:
        return weights[source]
    if role is None:
        return 1.0
    return _ROLE_WEIGHTS.get(role, {}).get(source, 1.0)


def pooled_ranks(
    ranks: Mapping[_K, Mapping[str, int]], scores: Mapping[_K, Mapping[str, float]]
) -> dict[_K, dict[str, int]]:
    """Each item's ranks, with every ranking that carries scores ranked again across all the
    items that have a score in it (best score first; ties keep the order of ``ranks``).

    A list's own rank 1 says only that nothing in that list matched better: a small table's best
    match may be poor next to a large table's tenth. Where lists report comparable scores (the
    same function in each, such as cosine similarity with one embedder), the items are ranked
    together by them; the other rankings keep the ranks their list gave.

    Args:
        ranks: For each item, its 1-based rank in every ranking of its own list that found it.
        scores: For each item, its score (higher is better) in the rankings whose scores are
            comparable across the lists; missing or empty: none.
    """
    by_score: dict[str, list[tuple[float, _K]]] = {}
    for item, item_ranks in ranks.items():
        for ranking, value in scores.get(item, {}).items():
            if ranking in item_ranks:
                by_score.setdefault(ranking, []).append((value, item))
    pooled = {item: dict(item_ranks) for item, item_ranks in ranks.items()}
    for ranking, scored in by_score.items():
        scored.sort(key=lambda pair: -pair[0])
        for position, (_, item) in enumerate(scored, start=1):
            pooled[item][ranking] = position
    return pooled


def fuse(
    results: Mapping[str, Sequence[Evidence]],
    *,
    k: int = RRF_K,
    role: str | None = None,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[Evidence, float]]:
    """Reciprocal rank fusion of every source's rankings.

    An item scores ``weight(source, role) / (k + rank)`` summed over every ranking that placed it
    (its :attr:`~engine.Evidence.ranks`, or else its position in the source's list). A ranking
    whose items carry scores is ranked across the sources first (:func:`pooled_ranks`).

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
    kept: list[tuple[Evidence, str, int]] = []
    for name, items in results.items():
        for position, evidence in enumerate(items, start=1):
            if evidence.citation in seen:
                continue
            seen.add(evidence.citation)
            kept.append((evidence, name, position))
    pooled = pooled_ranks(
        {e.citation: e.ranks for e, _, _ in kept}, {e.citation: e.scores for e, _, _ in kept}
    )
    pinned: list[tuple[Evidence, float]] = []
    ranked: list[tuple[Evidence, float]] = []
    for evidence, name, position in kept:
        ranks = pooled[evidence.citation] or {name: position}
        score = rrf_score(ranks, k=k, weight=_role_weight(role, name, weights))
        (pinned if evidence.pinned else ranked).append((evidence, score))
    ranked.sort(key=lambda pair: (-pair[1], pair[0].citation))
    return pinned + ranked
