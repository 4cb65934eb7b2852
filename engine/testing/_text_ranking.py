"""The rankings of the in-memory memory searches: full text, trigram word similarity and vectors.

They follow what the PostgreSQL store asks of the server closely enough for the same searches to
find the same rows in the same broad order: full text matches any of the query's words after
English stop words are dropped and plurals and ``-ing``/``-ed`` endings are cut (a small stand-in
for PostgreSQL's Snowball stemmer), trigram matching is ``pg_trgm``'s ``word_similarity`` with
its default 0.6 threshold, and vectors are compared by cosine similarity.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Final, TypeAlias, TypeVar

from .. import Hit, fuse_ranks
from ._trigram import trigrams

__all__ = [
    "TRGM_THRESHOLD",
    "Vector",
    "cosine",
    "fts_score",
    "lexemes",
    "ranked_hits",
    "word_similarity",
]

_T = TypeVar("_T")

#: A stored embedding: the model that made it and the vector.
Vector: TypeAlias = tuple[str, tuple[float, ...]]

#: ``pg_trgm.word_similarity_threshold``'s default: the ``<%`` operator's cut-off.
TRGM_THRESHOLD: Final = 0.6

_WORD: Final = re.compile(r"\w+")
_TRGM_WORD: Final = re.compile(r"[^\W_]+")

# PostgreSQL's english.stop (the Snowball list).
_STOP: Final = frozenset(
    """i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom this
    that these those am is are was were be been being have has had having do does did doing a an
    the and but if or because as until while of at by for with about against between into through
    during before after above below to from up down in out on off over under again further then
    once here there when where why how all any both each few more most other some such no nor not
    only own same so than too very s t can will just don should now""".split()
)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def lexemes(text: str) -> list[str]:
    """The words of ``text`` as full-text search compares them (stop words left out)."""
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP]


def fts_score(query: str, weighted: Sequence[tuple[str, float]]) -> float:
    """How well ``weighted`` texts (each with its weight) match any word of ``query`` (0: no match).

    A text matching more of the query's words scores higher, then one matching them more often.
    """
    wanted = set(lexemes(query)[:64])
    if not wanted:
        return 0.0
    score = 0.0
    for text, weight in weighted:
        words = lexemes(text)
        found = wanted.intersection(words)
        if found:
            score += weight * (len(found) + 0.1 * sum(words.count(w) for w in found) / len(words))
    return score


def _ordered_trigrams(text: str) -> list[str]:
    out: list[str] = []
    for word in _TRGM_WORD.findall(text.lower()):
        padded = f"  {word} "
        out.extend(padded[i : i + 3] for i in range(len(padded) - 2))
    return out


def word_similarity(query: str, text: str) -> float:
    """``pg_trgm``'s ``word_similarity(query, text)``: the best similarity between the query's
    trigrams and any contiguous run of the text's trigrams."""
    wanted = trigrams(query)
    if not wanted:
        return 0.0
    ordered = _ordered_trigrams(text)
    best = 0.0
    for start, first in enumerate(ordered):
        if first not in wanted:
            continue
        extent: set[str] = set()
        for trigram in ordered[start:]:
            extent.add(trigram)
            common = len(wanted & extent)
            best = max(best, common / (len(wanted) + len(extent) - common))
    return best


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors of one length (0 when either has no direction)."""
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    if not na or not nb:
        return 0.0
    return sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)


def ranked_hits(
    query: str,
    rows: Sequence[tuple[int, _T, Sequence[tuple[str, float]], Vector | None]],
    limit: int,
    *,
    query_vector: Vector | None,
    min_vector: float,
) -> tuple[Hit[_T], ...]:
    """Rank ``(id, item, weighted texts, vector)`` rows by full text, trigram word similarity and
    (given ``query_vector``) cosine similarity, each ranking best first (ties: newest id first) and
    cut at ``limit``, then fuse them with :func:`engine.fuse_ranks`."""
    scored: dict[str, list[tuple[float, int]]] = {"fts": [], "trgm": []}
    if query_vector is not None:
        scored["vec"] = []
    for row_id, _, texts, vector in rows:
        fts = fts_score(query, texts)
        if fts > 0:
            scored["fts"].append((fts, row_id))
        trgm = word_similarity(query, " ".join(t for t, _ in texts))
        if trgm >= TRGM_THRESHOLD:
            scored["trgm"].append((trgm, row_id))
        if query_vector is not None and vector is not None and vector[0] == query_vector[0]:
            sim = cosine(query_vector[1], vector[1])
            if sim >= min_vector:
                scored["vec"].append((sim, row_id))
    items = {row_id: item for row_id, item, _, _ in rows}
    ranks: dict[int, dict[str, int]] = {}
    scores: dict[int, dict[str, float]] = {}
    for name, found in scored.items():
        found.sort(key=lambda pair: (-pair[0], -pair[1]))
        for rank, (score, row_id) in enumerate(found[:limit], start=1):
            ranks.setdefault(row_id, {})[name] = rank
            scores.setdefault(row_id, {})[name] = score
    fused = fuse_ranks(ranks, tiebreak=lambda row_id: -row_id, limit=limit)
    return tuple(Hit(items[i], ranks[i], scores[i]) for i, _ in fused)
