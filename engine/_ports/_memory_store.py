"""The conversation-memory ports: the memory store, the embedder, the rehydrator's memory source, and the
errors a memory store raises.

Nothing here does I/O. The records these speak live beside them in :mod:`engine._ports._memory_records`;
the PostgreSQL implementation lives in ``adapters``, and the rehydrator
(:mod:`engine._memory._rehydrator`) talks to memory only through :class:`MemorySource`.

Every implementation checks its arguments with :mod:`engine._ports._validation`, so they all refuse the
same values with the same :class:`~engine.InvalidArgumentError`. A ranked search returns at most
``limit`` hits, ordered by :func:`engine.fuse_ranks` of their ranks (ties: the newer row first).

**Repository scope.** A memory session may carry the repository its memory belongs to (the work
tree's root path, set by :meth:`MemoryStore.ensure_session`). The ``repo`` scope of a search or a
fact listing is the rows of every memory session carrying that repository, so memory written in
one session of a repository is found from any other session on it. Given both a ``session_id`` and
a ``repo``, a search keeps the rows of either (the session's own and its repository's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from .._core._errors import ScribeError
from ._memory_records import (
    ContextFact,
    Decision,
    Evidence,
    MemoryRetention,
    MemorySession,
    Message,
    NewDecision,
    NewMessage,
    Preference,
    SearchResult,
    SourceQuery,
    SweepReport,
    VectorStatus,
)

__all__ = [
    "DecisionStateError",
    "Embedder",
    "EmbeddingError",
    "MemoryNotFoundError",
    "MemorySource",
    "MemoryStore",
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


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors of a fixed dimension."""

    @property
    def model(self) -> str:
        """Name of the embedding model (vectors of different models are never compared)."""
        ...

    @property
    def dimensions(self) -> int:
        """Length of every vector returned."""
        ...

    async def embed(self, texts: Sequence[str]) -> Sequence[Sequence[float]]:
        """Return one vector per text, in order.

        Cancellation: the call is abandoned and nothing is stored.
        """
        ...


class MemoryStore(Protocol):
    """Long-term and short-term conversation memory.

    Every read leaves out rows whose expiry has passed. Every call is a cancellation point; a
    cancelled write leaves nothing half-done (each write is one transaction).
    """

    @property
    def vector_status(self) -> VectorStatus:
        """Whether vector search can run against this store."""
        ...

    async def ensure_session(
        self,
        session_id: str,
        *,
        title: str = "",
        metadata: Mapping[str, Any] | None = None,
        repo: str | None = None,
    ) -> MemorySession:
        """Create the memory session for an engine session id, or return the existing one.

        A title, metadata or ``repo`` given replaces the stored one; one left out keeps it (a
        session's repository is never cleared)."""
        ...

    async def add_messages(
        self, session_id: str, messages: Sequence[NewMessage], *, embed: bool = True
    ) -> list[Message]:
        """Append messages to a session (created if missing) in order, numbering them; answers
        the messages stored. A message whose ``source_id`` the session already has (or that an
        earlier message of the same call carries) is skipped: left out of the answer, and of the
        numbering. With ``embed`` false they are stored without vectors (a background embedder,
        where there is one, gives them theirs later; until then vector search does not see
        them)."""
        ...

    async def get_messages(
        self, session_id: str, *, limit: int | None = None, after_seq: int = 0
    ) -> list[Message]:
        """Live messages of a session in order; ``limit`` (>= 1, or None for all) keeps the newest ones."""
        ...

    async def search_messages(
        self,
        query: str,
        *,
        session_id: str | None = None,
        repo: str | None = None,
        limit: int = 20,
    ) -> SearchResult[Message]:
        """Search live messages by full text, trigram and (when available) vector similarity,
        of one session, of the sessions carrying ``repo``, or (both given) of either (neither:
        every session).

        At most ``limit`` (>= 1) hits, best first by :func:`engine.fuse_ranks` of their ranks.
        """
        ...

    async def set_fact(
        self,
        session_id: str,
        fact_type: str,
        key: str,
        value: Any,
        *,
        pinned: bool = False,
        ttl: float | None = None,
    ) -> ContextFact:
        """Insert or replace the fact ``(session_id, fact_type, key)``."""
        ...

    async def get_fact(self, session_id: str, fact_type: str, key: str) -> ContextFact | None:
        """The live fact, or ``None``."""
        ...

    async def list_facts(
        self,
        session_id: str | None,
        *,
        repo: str | None = None,
        fact_type: str | None = None,
        pinned_only: bool = False,
    ) -> list[ContextFact]:
        """Live facts of a session, of the sessions carrying ``repo``, or (both given) of either
        (at least one of the two), pinned first, then by type, key and session."""
        ...

    async def delete_fact(self, session_id: str, fact_type: str, key: str) -> bool:
        """Delete a fact; ``True`` when a live one existed."""
        ...

    async def add_decision(self, decision: NewDecision) -> Decision:
        """Record a decision."""
        ...

    async def get_decision(self, decision_id: int) -> Decision:
        """A live decision (raises :class:`MemoryNotFoundError`)."""
        ...

    async def close_decision(self, decision_id: int) -> Decision:
        """Mark an open decision closed."""
        ...

    async def supersede_decision(self, decision_id: int, replacement: NewDecision) -> Decision:
        """Record ``replacement`` and mark ``decision_id`` superseded by it, atomically."""
        ...

    async def decision_chain(self, decision_id: int) -> list[Decision]:
        """The supersession chain through ``decision_id``, oldest first, current last."""
        ...

    async def open_decisions(
        self, *, session_id: str | None = None, repo: str | None = None, limit: int = 20
    ) -> list[Decision]:
        """The live open decisions (in force: neither closed nor superseded) of one session, of
        the sessions carrying ``repo``, or (both given) of either (neither: every session), newest
        first, at most ``limit`` (>= 1)."""
        ...

    async def search_decisions(
        self,
        query: str,
        *,
        session_id: str | None = None,
        repo: str | None = None,
        include_superseded: bool = False,
        limit: int = 20,
    ) -> SearchResult[Decision]:
        """Search live decisions by full text, trigram and (when available) vector similarity,
        of one session, of the sessions carrying ``repo``, or (both given) of either (neither:
        every session).

        At most ``limit`` (>= 1) hits, best first by :func:`engine.fuse_ranks` of their ranks.
        """
        ...

    async def set_preference(
        self,
        user_id: str,
        key: str,
        value: Any,
        *,
        confidence: float,
        source: str,
        ttl: float | None = None,
    ) -> Preference:
        """Insert or replace a user preference (the usage count is kept on replace)."""
        ...

    async def get_preference(
        self, user_id: str, key: str, *, record_use: bool = True
    ) -> Preference | None:
        """The live preference (counting one use unless ``record_use`` is false), or ``None``."""
        ...

    async def list_preferences(
        self, user_id: str, *, min_confidence: float = 0.0
    ) -> list[Preference]:
        """Live preferences of a user, most confident first."""
        ...

    async def cache_get(self, key: str) -> Any | None:
        """A live retrieval-cache entry, or ``None``."""
        ...

    async def cache_put(self, key: str, value: Any, *, ttl: float) -> None:
        """Store a retrieval-cache entry for ``ttl`` seconds."""
        ...

    async def sweep_expired(self, retention: MemoryRetention | None = None) -> SweepReport:
        """Delete expired rows from every memory table, and with ``retention`` the messages and
        superseded decisions older than it keeps (in batches of ``retention.batch``)."""
        ...


@runtime_checkable
class MemorySource(Protocol):
    """Something the rehydrator can ask for evidence."""

    @property
    def name(self) -> str:
        """Unique name of the source (used in citations and reports)."""
        ...

    async def search(self, query: SourceQuery) -> Sequence[Evidence]:
        """Return up to ``query.limit`` items, best first.

        Cancellation: the rehydrator cancels a source at its deadline; the source must stop
        promptly and release what it holds (processes killed, queries cancelled).
        """
        ...
