"""Reciprocal rank fusion: the one place where several rankings of one set of items become one order.

Stores and sources return ranked lists (each item with its rank in every ranking that found it); the
engine fuses them here. An item scores ``sum(weight / (k + rank))`` over the rankings that found it
(Cormack, Clarke and Buettcher, 2009; ``k = 60`` as in the paper). Imports no trio.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Final, TypeVar

from .._core._errors import InvalidArgumentError

__all__ = ["RRF_K", "fuse_ranks", "ranks_of", "rrf_score"]

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
