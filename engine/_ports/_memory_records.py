"""Memory records: what the memory and generation-cache stores keep and return, and what memory sources
answer (the data the memory ports speak).

Nothing here does I/O. Records check their fields on construction with the shared rules of
:mod:`engine._ports._validation`, so a bad value is refused the same way whichever store it is meant for.

Time to live values are seconds (``float``); ``None`` means the row never expires. Expired rows
are never returned by any read of a conforming store, whether or not a sweep has deleted them yet.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

from .._core._errors import InvalidArgumentError
from .._core._limits import (
    DESCRIPTION_MAX,
    GENERATION_TEXT_MAX,
    LIMIT_MAX,
    LIST_MAX,
    MEMORY_TEXT_MAX,
    NAME_MAX,
    PATH_MAX,
    QUERY_MAX,
    SOURCE_ID_MAX,
    check_count,
    check_length,
)
from ._validation import check_json, check_limit, check_repo, check_text, check_ttl

__all__ = [
    "RETAINED_DECISIONS",
    "RETAINED_MESSAGES",
    "CachedGeneration",
    "ContextFact",
    "Decision",
    "DecisionStatus",
    "Evidence",
    "Hit",
    "MemoryRetention",
    "MemorySession",
    "Message",
    "MessageRole",
    "NewDecision",
    "NewGeneration",
    "NewMessage",
    "Preference",
    "SearchResult",
    "SourceQuery",
    "SweepReport",
    "VectorStatus",
    "content_hash",
]

T = TypeVar("T")


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


@dataclass(frozen=True, slots=True)
class MemorySession:
    """A memory session, keyed by the engine session id it belongs to; ``repo`` is the repository
    (work tree root) its memory belongs to, if any."""

    session_id: str
    title: str
    metadata: Mapping[str, Any]
    created_at: datetime
    repo: str | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to append to a session. ``ttl`` seconds makes it short-term memory.

    ``source_id`` names what the message was made from (a transcript record's uid): a store keeps
    one message per ``(session, source_id)`` and skips a message whose source id the session
    already has, so importing the same record twice stores it once. None: no such check.
    """

    role: MessageRole | str
    content: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    ttl: float | None = None
    source_id: str | None = None

    def __post_init__(self) -> None:
        try:
            MessageRole(self.role)
        except ValueError:
            roles = ", ".join(r.value for r in MessageRole)
            raise InvalidArgumentError(
                f"unknown message role {self.role!r} (expected one of {roles})"
            ) from None
        check_text("message content", self.content, maximum=MEMORY_TEXT_MAX)
        check_json("message metadata", self.metadata)
        if self.source_id is not None:
            check_text("message source_id", self.source_id, maximum=SOURCE_ID_MAX)
        object.__setattr__(self, "ttl", check_ttl(self.ttl))


@dataclass(frozen=True, slots=True)
class Message:
    """A stored conversation message; ``seq`` orders messages within their session from 1;
    ``source_id`` is what it was imported from, if anything (see :class:`NewMessage`)."""

    id: int
    session_id: str
    seq: int
    role: MessageRole
    content: str
    content_hash: str
    metadata: Mapping[str, Any]
    created_at: datetime
    expires_at: datetime | None
    source_id: str | None = None


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
        check_length("decision title", self.title, DESCRIPTION_MAX)
        if not isinstance(self.body, str):
            raise InvalidArgumentError("a decision body is a string")
        check_length("decision body", self.body, MEMORY_TEXT_MAX)
        if self.session_id is not None:
            check_text("session_id", self.session_id)
        for what in ("entities", "files"):
            items = getattr(self, what)
            if isinstance(items, str) or not all(isinstance(i, str) for i in items):
                raise InvalidArgumentError(f"{what} are a sequence of strings, not {items!r:.200}")
            check_count(what, len(items), LIST_MAX)
            for item in items:
                check_length(what, item, PATH_MAX)
        object.__setattr__(self, "ttl", check_ttl(self.ttl))


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
class MemoryRetention:
    """How long memory is kept besides its own expiry, for :meth:`MemoryStore.sweep_expired`.

    Attributes:
        messages: seconds a message is kept after it was written (None: forever, the default).
        superseded_decisions: seconds a superseded decision is kept after it was superseded
            (None: forever).
        batch: the most rows one statement deletes (each batch is its own transaction, so no
            sweep holds locks on many rows at once).
    """

    messages: float | None = None
    superseded_decisions: float | None = None
    batch: int = 1000

    def __post_init__(self) -> None:
        for name in ("messages", "superseded_decisions"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and value > 0):
                raise InvalidArgumentError(f"{name} must be None or seconds > 0, got {value!r}")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise InvalidArgumentError(f"batch must be an int >= 1, got {self.batch!r}")


#: The key of :attr:`SweepReport.deleted` counting messages swept past their retention.
RETAINED_MESSAGES: Final = "memory_messages (retention)"
#: The key of :attr:`SweepReport.deleted` counting superseded decisions swept past their retention.
RETAINED_DECISIONS: Final = "memory_decisions (superseded, retention)"


@dataclass(frozen=True, slots=True)
class SweepReport:
    """Rows deleted by one sweep of expired memory, per table (and, under
    :data:`RETAINED_MESSAGES` and :data:`RETAINED_DECISIONS`, the rows past their retention)."""

    deleted: Mapping[str, int]

    @property
    def total(self) -> int:
        """All rows deleted by the sweep."""
        return sum(self.deleted.values())


@dataclass(frozen=True, slots=True)
class SourceQuery:
    """What the rehydrator asks each memory source: ``session_id`` and ``repo`` (the repository's
    work tree root) narrow the search to that session, that repository's sessions, or (both given)
    either; a source that cannot narrow by one ignores it."""

    text: str
    session_id: str | None
    role: str | None
    limit: int
    repo: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise InvalidArgumentError(f"the query text must be a string, got {self.text!r}")
        check_length("query", self.text, QUERY_MAX)
        check_count("limit", check_limit(self.limit), LIMIT_MAX)
        check_repo(self.repo)


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
        scores: The item's score (higher is better) in those of its rankings whose scores mean
            the same in every source that reports them under that name (for example cosine
            similarity to the query with one embedder): the rehydrator ranks the items of all
            such sources together by it, instead of trusting each source's own rank 1. Empty:
            the ranks stand as the source gave them.
    """

    source: str
    id: str
    text: str
    ranks: Mapping[str, int] = field(default_factory=dict)
    pinned: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    scores: Mapping[str, float] = field(default_factory=dict)

    @property
    def citation(self) -> str:
        """``source:id``."""
        return f"{self.source}:{self.id}"


@dataclass(frozen=True, slots=True)
class NewGeneration:
    """A generation to store."""

    key: str
    prompt: str
    model: str
    settings: Mapping[str, Any]
    settings_hash: str
    response: str
    ttl: float | None

    def __post_init__(self) -> None:
        check_text("key", self.key, maximum=NAME_MAX)
        check_text("prompt", self.prompt, maximum=GENERATION_TEXT_MAX)
        check_text("model", self.model, maximum=NAME_MAX)
        if not isinstance(self.response, str):
            raise InvalidArgumentError("a generation's response is a string")
        check_length("response", self.response, GENERATION_TEXT_MAX)
        object.__setattr__(self, "ttl", check_ttl(self.ttl))


@dataclass(frozen=True, slots=True)
class CachedGeneration:
    """A stored generation; ``similarity`` is 1.0 for an exact match."""

    key: str
    prompt: str
    model: str
    settings_hash: str
    response: str
    created_at: datetime
    expires_at: datetime | None
    similarity: float
