"""Packing: candidates in priority order become a bundle's items within a token budget.

Greedy: pinned items and evidence arrive already ordered (:func:`engine._memory._fusion.fuse`); each is
kept if its line fits in what is left of the budget and it is not a near-duplicate of an item kept
before. Imports no trio.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._ports._memory_records import Evidence
from ._bundle import BundleItem, Dropped, DropReason, estimate_tokens, render_item
from ._near_duplicates import near_duplicate, shingles

__all__ = ["pack"]


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
        twin = next((c for c, g in considered if near_duplicate(grams, g, dedup_threshold)), None)
        if twin is not None:
            dropped.append(Dropped(evidence.citation, DropReason.DUPLICATE, cost, twin))
            continue
        considered.append((evidence.citation, grams))
        used += cost
        kept.append(BundleItem(evidence, score, cost))
    return kept, dropped
