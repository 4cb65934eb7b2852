"""Near-duplicate detection for bundles: Jaccard similarity of character 5-gram sets.

Two texts are near-duplicates when the Jaccard similarity of their shingle sets (lower-cased, whitespace
collapsed) reaches a threshold (0.6 by default in the rehydrator). Imports no trio.
"""

from __future__ import annotations

import re

__all__ = ["jaccard", "near_duplicate", "shingles"]

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


def near_duplicate(a: frozenset[str], b: frozenset[str], threshold: float) -> bool:
    """Whether two shingle sets are at least ``threshold`` similar."""
    # |A & B| / |A | B| <= min/max, so pairs of very different sizes are never near-duplicates.
    small, large = (len(a), len(b)) if len(a) <= len(b) else (len(b), len(a))
    if large and small < threshold * large:
        return False
    return jaccard(a, b) >= threshold
