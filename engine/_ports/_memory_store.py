"""Conversation memory: records, the store and source protocols, and the memory errors.

Nothing here does I/O. The PostgreSQL implementation lives in ``adapters``; the rehydrator
(:mod:`engine._memory._rehydrator`) talks to memory only through :class:`MemorySource`.

Time to live values are seconds (``float``); ``None`` means the row never expires. Expired rows
are never returned by any read of a conforming store, whether or not a sweep has deleted them yet.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from .._core._errors import InvalidArgumentError, ScribeError

__all__ = [
    "ContextFact",
    "Decision",
    "DecisionStateError",
    "DecisionStatus",
    "Embedder",
    "EmbeddingError",
    "Evidence",
    "Hit",
    "MemoryNotFoundError",
    "MemorySession",
    "MemorySource",
    "MemoryStore",
    "MemoryStoreError",
    "Message",
    "MessageRole",
    "NewDecision",
    "NewMessage",
    "Preference",
    "SearchResult",
    "SourceQuery",
    "SweepReport",
    "VectorSearchUnavailableError",
    "VectorStatus",
    "content_hash",
]

T = TypeVar("T")


# --------------------------------------------------------------------------------------- errors


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


# -------------------------------------------------------------------------------------- records


class MessageRole(enum.StrEnum):
    """Who wrote a conversation message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class DecisionStatus(enum.StrEnum):
    """Lifecycle of a decision: open, closed, or superseded by a newer decision."""

    OPEN = "open"
    CLOSED = "closed"
    SUPERSEDED = "superseded"


class VectorStatus(enum.StrEnum):
    """Whether a search used vector similarity, and if not, why not."""

    USED = "used"
    NO_EMBEDDER = "no_embedder"
    UNAVAILABLE = "unavailable"  # the server (or database) has no pgvector


def content_hash(content: str) -> str:
    """Return the hex SHA-256 of ``content`` encoded as UTF-8 (the stored content hash)."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def _check_ttl(ttl: float | None) -> None:
    if ttl is not None and not ttl > 0:
        raise InvalidArgumentError(f"ttl must be a positive number of seconds or None, got {ttl!r}")


@dataclass(frozen=True, slots=True)
class MemorySession:
    """A memory session, keyed by the engine session id it belongs to."""

    session_id: str
    title: str
    metadata: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to append to a session. ``ttl`` seconds makes it short-term memory."""

    role: MessageRole | str
    content: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    ttl: float | None = None

    def __post_init__(self) -> None:
        try:
            MessageRole(self.role)
        except ValueError:
            roles = ", ".join(r.value for r in MessageRole)
            raise InvalidArgumentError(
                f"unknown message role {self.role!r} (expected one of {roles})"
            ) from None
        if not isinstance(self.content, str) or not self.content:
            raise InvalidArgumentError("message content must be a non-empty string")
        _check_ttl(self.ttl)


@dataclass(frozen=True, slots=True)
class Message:
    """A stored conversation message; ``seq`` orders messages within their session from 1."""

    id: int
    session_id: str
    seq: int
    role: MessageRole
    content: str
    content_hash: str
    metadata: Mapping[str, Any]
    created_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class ContextFact:
    """A fact about a session keyed by ``(session_id, fact_type, key)``; pinned facts lead bundles."""

    session_id: str
    fact_type: str
    key: str
    value: Any
    pinned: bool
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewDecision:
    """A decision to record."""

    title: str
    body: str = ""
    session_id: str | None = None
    entities: Sequence[str] = ()
    files: Sequence[str] = ()
    status: DecisionStatus | str = DecisionStatus.OPEN
    ttl: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip():
            raise InvalidArgumentError("a decision needs a non-empty title")
        try:
            status = DecisionStatus(self.status)
        except ValueError:
            raise InvalidArgumentError(f"unknown decision status {self.status!r}") from None
        if status is DecisionStatus.SUPERSEDED:
            raise InvalidArgumentError("a new decision cannot start superseded")
        if isinstance(self.entities, str) or isinstance(self.files, str):
            raise InvalidArgumentError("entities and files are sequences of strings, not strings")
        _check_ttl(self.ttl)


@dataclass(frozen=True, slots=True)
class Decision:
    """A stored decision. ``superseded_by`` is set exactly when ``status`` is superseded."""

    id: int
    session_id: str | None
    title: str
    body: str
    status: DecisionStatus
    superseded_by: int | None
    entities: tuple[str, ...]
    files: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Preference:
    """A user preference with the confidence in it, where it came from and how often it was used."""

    user_id: str
    key: str
    value: Any
    confidence: float
    source: str
    usage_count: int
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Hit(Generic[T]):
    """One search result: the item, its 1-based rank in each ranking that found it, and scores."""

    item: T
    ranks: Mapping[str, int]
    scores: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class SearchResult(Generic[T]):
    """Hits of a search plus whether vector similarity took part (and why not if it did not)."""

    hits: tuple[Hit[T], ...]
    vector: VectorStatus


@dataclass(frozen=True, slots=True)
class SweepReport:
    """Rows deleted by one sweep of expired memory, per table."""

    deleted: Mapping[str, int]

    @property
    def total(self) -> int:
        """All rows deleted by the sweep."""
        return sum(self.deleted.values())


# ------------------------------------------------------------------------------------ protocols


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
        self, session_id: str, *, title: str = "", metadata: Mapping[str, Any] | None = None
    ) -> MemorySession:
        """Create the memory session for an engine session id, or return the existing one."""
        ...

    async def add_messages(self, session_id: str, messages: Sequence[NewMessage]) -> list[Message]:
        """Append messages to a session (created if missing) in order, numbering them."""
        ...

    async def get_messages(
        self, session_id: str, *, limit: int | None = None, after_seq: int = 0
    ) -> list[Message]:
        """Live messages of a session in order; ``limit`` keeps the newest ones."""
        ...

    async def search_messages(
        self, query: str, *, session_id: str | None = None, limit: int = 20
    ) -> SearchResult[Message]:
        """Search live messages by full text, trigram and (when available) vector similarity."""
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
        self, session_id: str, *, fact_type: str | None = None, pinned_only: bool = False
    ) -> list[ContextFact]:
        """Live facts of a session."""
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

    async def search_decisions(
        self,
        query: str,
        *,
        session_id: str | None = None,
        include_superseded: bool = False,
        limit: int = 20,
    ) -> SearchResult[Decision]:
        """Search live decisions by full text, trigram and (when available) vector similarity."""
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

    async def sweep_expired(self) -> SweepReport:
        """Delete expired rows from every memory table."""
        ...


# ------------------------------------------------------------------------- rehydrator sources


@dataclass(frozen=True, slots=True)
class SourceQuery:
    """What the rehydrator asks each memory source."""

    text: str
    session_id: str | None
    role: str | None
    limit: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of evidence from a memory source.

    Attributes:
        source: Name of the source (the first half of the citation).
        id: The row or item id inside that source (the second half of the citation).
        text: The text offered to the model.
        ranks: 1-based rank of this item in each of the source's rankings (for example
            ``{"fts": 1, "trgm": 4}``). Empty means the position in the returned list.
        pinned: Pinned items lead the bundle, ahead of ranked evidence.
        metadata: Anything else worth showing (JSON-compatible).
    """

    source: str
    id: str
    text: str
    ranks: Mapping[str, int] = field(default_factory=dict)
    pinned: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def citation(self) -> str:
        """``source:id``."""
        return f"{self.source}:{self.id}"


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
