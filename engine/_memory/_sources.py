"""Memory sources over a :class:`~engine._ports._memory_store.MemoryStore`, and the memory sweeper service.

These speak only the store protocol, so they work over any implementation. Citations use the
row ids of the store: ``messages:<message id>``, ``decisions:<decision id>`` and
``facts:<fact_type>/<key>`` (``facts:<session id>/<fact_type>/<key>`` when the facts of a whole
repository are asked for).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Final, Generic, TypeVar, final

import trio

from .._ports._memory_records import (
    ContextFact,
    Decision,
    Evidence,
    MemoryRetention,
    Message,
    SearchResult,
    SourceQuery,
    SweepReport,
)
from .._ports._memory_store import MemoryStore
from .._ports._validation import check_seconds

__all__ = [
    "DecisionsSource",
    "FactsSource",
    "MessagesSource",
    "run_memory_sweeper",
]

_MAX_TEXT: Final = 2000
_Item = TypeVar("_Item")


def _clip(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def message_text(message: Message) -> str:
    """How a message reads in a bundle."""
    return _clip(f"{message.role.value}: {message.content}")


def decision_text(decision: Decision) -> str:
    """How a decision reads in a bundle."""
    parts = [f"decision ({decision.status.value}): {decision.title}"]
    if decision.body:
        parts.append(decision.body)
    if decision.files:
        parts.append("files: " + ", ".join(decision.files))
    if decision.entities:
        parts.append("entities: " + ", ".join(decision.entities))
    return _clip(" | ".join(parts))


def fact_text(fact: ContextFact) -> str:
    """How a context fact reads in a bundle."""
    value = fact.value if isinstance(fact.value, str) else json.dumps(fact.value, sort_keys=True)
    return _clip(f"{fact.fact_type} {fact.key}: {value}")


class _RankedSource(Generic[_Item]):
    """A source over one of the store's ranked searches; subclasses say which and how items read."""

    def __init__(self, store: MemoryStore, *, name: str) -> None:
        self._store = store
        self._name = name

    @property
    def name(self) -> str:
        """The source name."""
        return self._name

    async def _ranked(self, query: SourceQuery) -> SearchResult[_Item]:
        raise NotImplementedError

    def _evidence(
        self, item: _Item, ranks: Mapping[str, int], scores: Mapping[str, float]
    ) -> Evidence:
        raise NotImplementedError

    async def search(self, query: SourceQuery) -> Sequence[Evidence]:
        """Search the store (full text, trigram and, where available, vector ranks kept, with
        their scores: each ranking scores messages and decisions alike, so the rehydrator ranks
        the two together).

        Cancellation: the store query is cancelled.
        """
        result = await self._ranked(query)
        return [self._evidence(hit.item, hit.ranks, hit.scores) for hit in result.hits]


@final
class MessagesSource(_RankedSource[Message]):
    """Conversation messages matching the query (full text, trigram, vector ranks kept)."""

    def __init__(self, store: MemoryStore, *, name: str = "messages") -> None:
        super().__init__(store, name=name)

    async def _ranked(self, query: SourceQuery) -> SearchResult[Message]:
        return await self._store.search_messages(
            query.text, session_id=query.session_id, repo=query.repo, limit=query.limit
        )

    def _evidence(
        self, item: Message, ranks: Mapping[str, int], scores: Mapping[str, float]
    ) -> Evidence:
        return Evidence(
            source=self._name,
            id=str(item.id),
            text=message_text(item),
            ranks=ranks,
            metadata={"session_id": item.session_id, "seq": item.seq},
            scores=scores,
        )


@final
class DecisionsSource(_RankedSource[Decision]):
    """Live, not superseded decisions matching the query."""

    def __init__(self, store: MemoryStore, *, name: str = "decisions") -> None:
        super().__init__(store, name=name)

    async def _ranked(self, query: SourceQuery) -> SearchResult[Decision]:
        return await self._store.search_decisions(
            query.text, session_id=query.session_id, repo=query.repo, limit=query.limit
        )

    def _evidence(
        self, item: Decision, ranks: Mapping[str, int], scores: Mapping[str, float]
    ) -> Evidence:
        return Evidence(
            source=self._name,
            id=str(item.id),
            text=decision_text(item),
            ranks=ranks,
            metadata={"status": item.status.value},
            scores=scores,
        )


_TERM = re.compile(r"\w{3,}")


@final
class FactsSource:
    """The context facts of the session, of the repository, or of either, asked for: pinned ones as
    pinned items, the others ranked by the number of query words they share (those sharing none are
    left out)."""

    def __init__(self, store: MemoryStore, *, name: str = "facts") -> None:
        self._store = store
        self._name = name

    @property
    def name(self) -> str:
        """The source name."""
        return self._name

    async def search(self, query: SourceQuery) -> Sequence[Evidence]:
        """List the facts of the session, the repository, or either (none without both).

        Cancellation: the store query is cancelled.
        """
        if query.session_id is None and query.repo is None:
            return []
        facts = await self._store.list_facts(query.session_id, repo=query.repo)
        terms = set(_TERM.findall(query.text.lower()))
        pinned: list[Evidence] = []
        scored: list[tuple[int, str, Evidence]] = []
        several = query.session_id is None
        for fact in facts:
            evidence = Evidence(
                source=self._name,
                id=(f"{fact.session_id}/" if several else "") + f"{fact.fact_type}/{fact.key}",
                text=fact_text(fact),
                pinned=fact.pinned,
                metadata={"session_id": fact.session_id} if several else {},
            )
            if fact.pinned:
                pinned.append(evidence)
                continue
            overlap = len(terms & set(_TERM.findall(evidence.text.lower())))
            if overlap:
                scored.append((-overlap, evidence.id, evidence))
        scored.sort(key=lambda t: (t[0], t[1]))
        return (pinned + [e for _, _, e in scored])[: max(query.limit, len(pinned))]


async def run_memory_sweeper(
    store: MemoryStore,
    interval: float,
    on_sweep: Callable[[SweepReport], object] | None = None,
    retention: MemoryRetention | None = None,
) -> None:
    """Delete expired memory every ``interval`` seconds, forever (a service for the engine tree).

    Start it with ``eng.start_service(run_memory_sweeper, store, 60.0, name="memory-sweeper")``
    (``start_service`` passes positional arguments only, so ``on_sweep`` is positional too).
    Reads never return expired rows anyway; the sweeper only reclaims space.

    Args:
        store: The memory store to sweep.
        interval: Seconds between sweeps (the first sweep runs at once).
        on_sweep: Called with each sweep's report (for example to publish it).
        retention: What is deleted besides expired rows: messages and superseded decisions past
            their retention, in bounded batches (None: only expired rows).

    Cancellation: stops between sweeps, or cancels the sweep in progress (its batch in progress
    is not deleted; earlier batches stay deleted).
    """
    check_seconds("interval", interval)
    while True:
        report = await store.sweep_expired(retention)
        if on_sweep is not None:
            on_sweep(report)
        await trio.sleep(interval)
