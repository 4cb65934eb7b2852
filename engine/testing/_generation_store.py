"""The generation cache's store in memory: :class:`engine.GenerationCacheStore` with trigram matching."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, final

import trio

# The public names, not their modules: the generation cache's records and protocol may move.
from .. import (
    CachedGeneration,
    GenerationCache,
    GenerationCacheStore,
    NewGeneration,
    check_invalidate_filters,
    check_limit,
    check_text,
)
from ._trigram import similarity

__all__ = ["InMemoryGenerationStore", "in_memory_generation_cache"]


@dataclass(slots=True)
class _Row:
    generation: NewGeneration
    created_at: float
    expires_at: float | None
    hits: int = 0


def _when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


@final
class InMemoryGenerationStore:
    """Generations in memory (implements :class:`engine.GenerationCacheStore`).

    Similar prompts are found by ``pg_trgm``'s trigram similarity, as in PostgreSQL. Each call
    checks for cancellation first and then runs without yielding: a cancelled call changed nothing.

    Args:
        clock: "now" in seconds since the epoch (default :func:`time.time`); move it forward to
            let entries expire.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._rows: dict[str, _Row] = {}

    def __repr__(self) -> str:
        return f"<InMemoryGenerationStore: {len(self._rows)} entries>"

    def hits(self, key: str) -> int:
        """The hits counted on ``key`` since it was stored (0 for no entry)."""
        row = self._rows.get(key)
        return 0 if row is None else row.hits

    def _live(self, row: _Row, now: float) -> bool:
        return row.expires_at is None or row.expires_at > now

    def _cached(self, row: _Row, similarity: float) -> CachedGeneration:
        g = row.generation
        created = _when(row.created_at)
        assert created is not None
        return CachedGeneration(
            key=g.key,
            prompt=g.prompt,
            model=g.model,
            settings_hash=g.settings_hash,
            response=g.response,
            created_at=created,
            expires_at=_when(row.expires_at),
            similarity=similarity,
        )

    async def get_exact(self, key: str) -> CachedGeneration | None:
        """The live entry for ``key``, counting a hit, or None. Cancellation: nothing counted."""
        await trio.lowlevel.checkpoint()
        row = self._rows.get(key)
        if row is None or not self._live(row, self._clock()):
            return None
        row.hits += 1
        return self._cached(row, 1.0)

    async def find_similar(
        self, prompt: str, *, model: str, settings_hash: str, threshold: float, limit: int
    ) -> list[CachedGeneration]:
        """Live entries of that model and settings at least ``threshold`` similar, most similar
        first (ties by key). Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        check_text("prompt", prompt)
        check_limit(limit)
        now = self._clock()
        scored = [
            (similarity(row.generation.prompt, prompt), key, row)
            for key, row in self._rows.items()
            if row.generation.model == model
            and row.generation.settings_hash == settings_hash
            and self._live(row, now)
        ]
        scored = [s for s in scored if s[0] >= threshold]
        scored.sort(key=lambda s: (-s[0], s[1]))
        return [self._cached(row, sim) for sim, _, row in scored[:limit]]

    async def record_hit(self, key: str) -> None:
        """Count a hit on ``key``. Cancellation: not counted."""
        await trio.lowlevel.checkpoint()
        row = self._rows.get(key)
        if row is not None:
            row.hits += 1

    async def put(self, generation: NewGeneration) -> None:
        """Insert or replace the entry (its hits start again at 0). Cancellation: not written."""
        await trio.lowlevel.checkpoint()
        now = self._clock()
        expires = None if generation.ttl is None else now + generation.ttl
        self._rows[generation.key] = _Row(generation, now, expires)

    async def invalidate(
        self,
        *,
        key: str | None = None,
        model: str | None = None,
        older_than: float | None = None,
    ) -> int:
        """Delete entries matching every given filter; return how many.

        Raises:
            InvalidArgumentError: no filter was given.

        Cancellation: nothing is deleted.
        """
        await trio.lowlevel.checkpoint()
        key, model, older_than = check_invalidate_filters(key, model, older_than)
        now = self._clock()
        doomed = [
            k
            for k, row in self._rows.items()
            if (key is None or k == key)
            and (model is None or row.generation.model == model)
            and (older_than is None or row.created_at <= now - older_than)
        ]
        for k in doomed:
            del self._rows[k]
        return len(doomed)


def in_memory_generation_cache(
    store: InMemoryGenerationStore | None = None,
    *,
    similarity_threshold: float | None = 0.8,
    ttl: float | None = None,
) -> GenerationCache:
    """A :class:`engine.GenerationCache` over an in-memory store (a new one by default), as
    ``adapters.create_generation_cache`` makes one over PostgreSQL."""
    return GenerationCache(
        store if store is not None else InMemoryGenerationStore(),
        similarity_threshold=similarity_threshold,
        ttl=ttl,
    )


if TYPE_CHECKING:

    def _conforms(store: InMemoryGenerationStore) -> GenerationCacheStore:
        return store
