"""The similarity guard of the generation cache: may a cached answer to a similar prompt answer this one?

A trigram match happily pairs "do not delete the table" with "delete the table", or "retry 3 times"
with "retry 5 times"; two prompts pass the guard only when they agree on negation words and on
numbers. Pure functions, no I/O.
"""

from __future__ import annotations

import math
import re

__all__ = ["negation_words", "number_tokens", "similarity_guard"]


_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,_]*(?:\.\d+)?(?:e[-+]?\d+)?%?", re.IGNORECASE)
_NEGATIONS = frozenset(
    {
        "not",
        "no",
        "never",
        "none",
        "nobody",
        "nothing",
        "nowhere",
        "neither",
        "nor",
        "without",
        "cannot",
        "cant",
        "dont",
        "doesnt",
        "didnt",
        "isnt",
        "arent",
        "wasnt",
        "werent",
        "wont",
        "shouldnt",
        "wouldnt",
        "couldnt",
        "mustnt",
        "hasnt",
        "havent",
        "hadnt",
        "except",
        "exclude",
        "excluding",
        "avoid",
    }
)
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "hundred": "100",
    "thousand": "1000",
    "million": "1000000",
    "billion": "1000000000",
    "once": "1",
    "twice": "2",
    "thrice": "3",
    "half": "0.5",
    "double": "2",
    "triple": "3",
}


def negation_words(text: str) -> frozenset[str]:
    """Negation words in ``text``, normalised (``don't`` and ``do not`` both give ``not``)."""
    found: set[str] = set()
    for word in _WORD.findall(text.lower().replace("\u2019", "'")):
        if word.endswith("n't") or word == "cannot":
            found.add("not")
            continue
        if word in _NEGATIONS:
            found.add("not" if word in {"not", "cant"} else word)
    return frozenset(found)


def _normal_number(token: str) -> str:
    token = token.replace(",", "").replace("_", "").lstrip("+")
    percent = token.endswith("%")
    token = token.rstrip("%")
    try:
        value = float(token)
    except ValueError:
        return token
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        text = str(int(value))
    else:
        text = repr(value)
    return text + ("%" if percent else "")


def number_tokens(text: str) -> frozenset[str]:
    """Numbers in ``text`` (digits and common number words), normalised (``1,000`` -> ``1000``)."""
    found = {_normal_number(m.group(0)) for m in _NUMBER.finditer(text)}
    for word in _WORD.findall(text.lower()):
        if word in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[word])
    return frozenset(found)


def similarity_guard(prompt: str, candidate: str) -> str | None:
    """Whether a similar cached prompt may answer ``prompt``.

    Returns:
        ``None`` when the two prompts have the same negation words and the same numbers, else
        the reason for refusing (``"negation"`` or ``"number"``).
    """
    if negation_words(prompt) != negation_words(candidate):
        return "negation"
    if number_tokens(prompt) != number_tokens(candidate):
        return "number"
    return None
