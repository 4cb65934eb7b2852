"""What must never be stored or published: ``<private>`` text and likely secrets. Imports no trio and
does no I/O.

Every text Scribe keeps or shows (messages, worklog entries and notes, summaries, feed events, log
lines) passes through :meth:`Privacy.scrub` (or :meth:`Privacy.scrub_value` for a JSON payload)
before it is stored, published or written, and before it is cut to a bounded excerpt (an excerpt
cut first could keep a secret's tail or lose a ``<private>`` tag but not its text).

Two steps, in this order:

1. :func:`strip_private`: each ``<private>...</private>`` block is replaced by the marker
   :data:`PRIVATE_MARKER`. This step cannot be turned off: a person who wrote the tags asked for it,
   and no setting of anyone else's may store the text anyway.
2. :func:`engine.redact_secrets` with :data:`engine.DEFAULT_SECRET_PATTERNS` (less
   :attr:`Privacy.disabled_patterns`, plus :attr:`Privacy.extra_patterns`): on by default, off
   with ``redact=False``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from ._errors import InvalidArgumentError
from ._secrets import DEFAULT_SECRET_PATTERNS, SecretPattern, redact_secrets

__all__ = ["PRIVATE_MARKER", "Privacy", "strip_private"]

#: What replaces each removed ``<private>`` block, so a reader sees that something was there.
PRIVATE_MARKER: Final = "[private]"

# An opening or closing tag: ``<private>``, ``<PRIVATE reason="x">``, ``</private >``. Attributes are
# bounded (a tag longer than 1 KiB is not a tag), so a text full of ``<private`` stays linear.
_TAG: Final = re.compile(r"<(/?)private(?=[\s/>])[^<>]{0,1024}>", re.IGNORECASE)

_T = TypeVar("_T")


def strip_private(text: str) -> str:
    """``text`` with each ``<private>...</private>`` block replaced by ``[private]``.

    Tag names are matched in any case and may carry attributes (``<private reason="x">``); a block
    may span lines, and blocks may nest (the outermost pair is removed whole). A ``</private>``
    with no open block before it is ordinary text and stays. A ``<private>`` never closed removes
    everything after it (the text was cut short, or the tag was mistyped: either way nothing the
    writer meant to hide is kept). A self-closing ``<private/>`` hides nothing and stays.

    Stripping twice gives the text stripping once gave.
    """
    if "<" not in text:
        return text
    out: list[str] = []
    depth = 0
    kept_from = 0  # where the text not yet copied starts
    block_start = 0
    for tag in _TAG.finditer(text):
        closing = tag.group(1) == "/"
        if not closing and tag.group().endswith("/>"):
            continue
        if closing:
            if depth == 0:
                continue
            depth -= 1
            if depth == 0:
                out.append(text[kept_from:block_start])
                out.append(PRIVATE_MARKER)
                kept_from = tag.end()
        else:
            if depth == 0:
                block_start = tag.start()
            depth += 1
    if depth:
        out.append(text[kept_from:block_start])
        out.append(PRIVATE_MARKER)
    else:
        out.append(text[kept_from:])
    return "".join(out)


def _scrub_strings(value: _T, scrub: Callable[[str], str]) -> _T:
    """``value`` (a JSON value) with ``scrub`` applied to every string in it, keys excepted.

    Dicts, lists and tuples are copied (a tuple stays a tuple, a dict keeps its keys and their
    order); numbers, booleans, None and anything else are returned as they are. Nesting depth is
    not limited by Python's recursion limit (the walk keeps its own stack). ``value`` must hold no
    cycle.
    """
    root: list[Any] = [None]
    todo: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    tuples: list[tuple[list[Any], Any, Any]] = []
    while todo:
        item, parent, key = todo.pop()
        if isinstance(item, str):
            parent[key] = scrub(item)
        elif isinstance(item, dict):
            copy: dict[Any, Any] = dict.fromkeys(item)
            parent[key] = copy
            todo.extend((v, copy, k) for k, v in item.items())
        elif isinstance(item, list | tuple):
            items: list[Any] = [None] * len(item)
            parent[key] = items
            if isinstance(item, tuple):
                tuples.append((items, parent, key))
            todo.extend((v, items, i) for i, v in enumerate(item))
        else:
            parent[key] = item
    for items, parent, key in reversed(tuples):
        parent[key] = tuple(items)
    result: _T = root[0]
    return result


@dataclass(frozen=True, slots=True)
class Privacy:
    """How text is made safe to keep: ``<private>`` blocks always removed, secrets redacted.

    Args:
        redact: redact likely secrets (default on).
        extra_patterns: the owner's own patterns, applied after the default ones.
        disabled_patterns: names of default patterns not to apply (a pattern that redacts too much
            in someone's work: see :data:`engine.DEFAULT_SECRET_PATTERNS` for the names).

    Raises:
        InvalidArgumentError: a disabled name that no default pattern has, an extra pattern that is
            not a :class:`engine.SecretPattern`, or two patterns of one name.
    """

    redact: bool = True
    extra_patterns: tuple[SecretPattern, ...] = ()
    disabled_patterns: frozenset[str] = frozenset()
    _patterns: tuple[SecretPattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        extra = tuple(self.extra_patterns)
        disabled = frozenset(self.disabled_patterns)
        if any(not isinstance(p, SecretPattern) for p in extra):
            raise InvalidArgumentError("extra_patterns must be SecretPattern objects")
        known = {p.name for p in DEFAULT_SECRET_PATTERNS}
        unknown = sorted(str(n) for n in disabled - known)
        if unknown:
            raise InvalidArgumentError(f"no default secret pattern is named {', '.join(unknown)}")
        patterns = tuple(p for p in DEFAULT_SECRET_PATTERNS if p.name not in disabled) + extra
        names = [p.name for p in (*DEFAULT_SECRET_PATTERNS, *extra)]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise InvalidArgumentError(f"two secret patterns are named {', '.join(twice)}")
        object.__setattr__(self, "extra_patterns", extra)
        object.__setattr__(self, "disabled_patterns", disabled)
        object.__setattr__(self, "_patterns", patterns if self.redact else ())

    @property
    def patterns(self) -> tuple[SecretPattern, ...]:
        """The secret patterns :meth:`scrub` applies, in order (none when ``redact`` is off)."""
        return self._patterns

    def scrub(self, text: str) -> str:
        """``text`` without its ``<private>`` blocks and, unless ``redact`` is off, its secrets.

        Text with no ``<`` and none of the patterns' hints costs a ``lower()`` and a few substring
        tests. Scrubbing twice gives the text scrubbing once gave.
        """
        return redact_secrets(strip_private(text), self._patterns)

    def scrub_value(self, value: _T) -> _T:
        """``value`` (a JSON value: a payload, a record's fields) with every string in it scrubbed.

        Keys are kept as they are; numbers, booleans and None are unchanged; dicts, lists and tuples
        are copied. Nesting depth is not limited by Python's recursion limit; ``value`` must hold
        no cycle.
        """
        return _scrub_strings(value, self.scrub)
