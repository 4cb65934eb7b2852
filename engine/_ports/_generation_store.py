"""The generation cache's storage port (PostgreSQL in ``adapters``, in memory in ``engine.testing``).

Implementations check their arguments with :mod:`engine._ports._validation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ._memory_records import CachedGeneration, NewGeneration

__all__ = ["GenerationCacheStore"]


class GenerationCacheStore(Protocol):
    """Storage of the generation cache. Reads never return expired entries."""

    async def get_exact(self, key: str) -> CachedGeneration | None:
        """The live entry for ``key`` (counting a hit), or ``None``."""
        ...

    async def find_similar(
        self, prompt: str, *, model: str, settings_hash: str, threshold: float, limit: int
    ) -> Sequence[CachedGeneration]:
        """Live entries of that model and settings whose prompt trigram similarity to
        ``prompt`` is at least ``threshold``, most similar first."""
        ...

    async def record_hit(self, key: str) -> None:
        """Count a hit on ``key``."""
        ...

    async def put(self, generation: NewGeneration) -> None:
        """Insert or replace the entry for ``generation.key``."""
        ...

    async def invalidate(
        self,
        *,
        key: str | None = None,
        model: str | None = None,
        older_than: float | None = None,
    ) -> int:
        """Delete entries matching every given filter; return how many."""
        ...
