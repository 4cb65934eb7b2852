"""The conversation-memory errors (raised by every memory store, whatever its backend)."""

from __future__ import annotations

from .._core._errors import ScribeError

__all__ = [
    "DecisionStateError",
    "EmbeddingError",
    "MemoryNotFoundError",
    "MemoryStoreError",
    "VectorSearchUnavailableError",
]


class MemoryStoreError(ScribeError):
    """Root of the conversation-memory errors."""


class MemoryNotFoundError(MemoryStoreError, LookupError):
    """The session, decision or other memory row asked for does not exist (or has expired)."""


class DecisionStateError(MemoryStoreError):
    """A decision cannot make the requested move (for example superseding one already superseded)."""


class VectorSearchUnavailableError(MemoryStoreError):
    """Vector search was asked for but no embedder is configured or the server lacks pgvector."""


class EmbeddingError(MemoryStoreError):
    """The embedder returned vectors of the wrong count or dimension."""
