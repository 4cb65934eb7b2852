"""Memory sources built from in-process callables: any async function, and git context sections.

They implement :class:`~engine.MemorySource` for a host that has its own lookups (or for tests).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import final

from .._ports._memory_records import Evidence, SourceQuery

__all__ = ["CallableSource", "GitContextSource"]


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
