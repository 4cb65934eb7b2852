"""Trigram similarity as PostgreSQL's ``pg_trgm`` computes it, for the in-memory stores' searches."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["similarity", "trigrams"]

_WORD: Final = re.compile(r"[^\W_]+")


def trigrams(text: str) -> frozenset[str]:
    """The trigrams of ``text``: each lower-cased alphanumeric word padded with two spaces before
    and one after, cut into every run of three characters."""
    found: set[str] = set()
    for word in _WORD.findall(text.lower()):
        padded = f"  {word} "
        found.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return frozenset(found)


def similarity(a: str, b: str) -> float:
    """Shared trigrams over all trigrams of the two texts (``pg_trgm``'s ``similarity``)."""
    ta, tb = trigrams(a), trigrams(b)
    if not ta or not tb:
        return 0.0
    common = len(ta & tb)
    return common / (len(ta) + len(tb) - common)
