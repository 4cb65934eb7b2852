"""Conversation memory in memory: :class:`engine.MemoryStore` with expiry, supersession and search.

One concept, the store, over five record families (messages, facts, decisions, preferences, the
retrieval cache); the searches' rankings live in :mod:`._text_ranking` and are fused by the
engine's one reciprocal rank fusion, :func:`engine.fuse_ranks`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, final

import trio

# The public names, not their modules: memory records and rules may move between engine modules.
from .. import (
    ContextFact,
    Decision,
    DecisionStateError,
    DecisionStatus,
    Embedder,
    EmbeddingError,
    Hit,
    InvalidArgumentError,
    MemoryNotFoundError,
    MemorySession,
    MemoryStore,
    Message,
    MessageRole,
    NewDecision,
    NewMessage,
    Preference,
    SearchResult,
    SweepReport,
    VectorStatus,
    canonical_json,
    content_hash,
    fuse_ranks,
)
from ._text_ranking import TRGM_THRESHOLD, cosine, fts_score, word_similarity

__all__ = ["InMemoryMemoryStore"]

_T = TypeVar("_T")
_Vector = tuple[str, tuple[float, ...]]  # (embedding model, vector)


def _text(what: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidArgumentError(f"limit must be a positive int, got {limit!r}")
    return limit


def _ttl(ttl: object) -> float | None:
    if ttl is not None and (
        isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0
    ):
        raise InvalidArgumentError(f"ttl must be positive seconds or None, got {ttl!r}")
    return None if ttl is None else float(ttl)


def _stored_json(what: str, value: Any) -> Any:
    """``value`` as it reads back from a JSON column (a copy)."""
    try:
        return json.loads(canonical_json(value))
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{what} must be JSON-serialisable: {exc}") from None


@final
class InMemoryMemoryStore:
    """An :class:`engine.MemoryStore` held in memory.

    Reads leave out rows whose expiry has passed, as the PostgreSQL store does, and
    :meth:`sweep_expired` deletes them. Searches rank by full text, trigram word similarity and,
    with an embedder, cosine similarity (see :mod:`engine.testing._text_ranking` for how close
    to PostgreSQL each is); hits carry their rank and score in each ranking. Each call checks for
    cancellation (and computes embeddings) first, then runs without yielding: a cancelled call
    wrote nothing. Holds nothing to close.

    Args:
        embedder: turns texts into vectors for vector search (None: no vector search).
        min_vector_similarity: the least cosine similarity a vector hit needs.
        clock: "now" in seconds since the epoch (default :func:`time.time`); move it forward to
            let rows expire.
    """

    def __init__(
        self,
        *,
        embedder: Embedder | None = None,
        min_vector_similarity: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if embedder is not None and not isinstance(embedder, Embedder):
            raise InvalidArgumentError("embedder must implement engine.Embedder")
        if not -1.0 <= min_vector_similarity <= 1.0:
            raise InvalidArgumentError("min_vector_similarity must be within [-1, 1]")
        self._embedder = embedder
        self._min_vector = min_vector_similarity
        self._clock = clock
        self._sessions: dict[str, MemorySession] = {}
        self._next_seq: dict[str, int] = {}
        self._messages: dict[int, tuple[Message, _Vector | None]] = {}
        self._facts: dict[tuple[str, str, str], ContextFact] = {}
        self._decisions: dict[int, tuple[Decision, _Vector | None]] = {}
        self._preferences: dict[tuple[str, str], Preference] = {}
        self._cache: dict[str, tuple[Any, float]] = {}
        self._ids = {"message": 0, "decision": 0}

    def __repr__(self) -> str:
        return f"<InMemoryMemoryStore: {len(self._messages)} messages>"

    # -- time and liveness ----------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _expiry(self, ttl: float | None) -> datetime | None:
        return None if ttl is None else datetime.fromtimestamp(self._clock() + ttl, UTC)

    def _live(self, expires_at: datetime | None) -> bool:
        return expires_at is None or expires_at > self._now()

    def _new_id(self, family: str) -> int:
        self._ids[family] += 1
        return self._ids[family]

    # -- embeddings -----------------------------------------------------------------------------

    @property
    def vector_status(self) -> VectorStatus:
        """``used`` with an embedder, else ``no_embedder``."""
        return VectorStatus.NO_EMBEDDER if self._embedder is None else VectorStatus.USED

    async def _embed(self, texts: Sequence[str]) -> list[_Vector | None]:
        """The vectors of ``texts`` (None for one without direction, or every one without an
        embedder). Cancellation: the embedder's."""
        if self._embedder is None or not texts:
            await trio.lowlevel.checkpoint()
            return [None] * len(texts)
        vectors = await self._embedder.embed(list(texts))
        if len(vectors) != len(texts):
            raise EmbeddingError(f"embedder returned {len(vectors)} vectors for {len(texts)} texts")
        dims, model = self._embedder.dimensions, self._embedder.model
        out: list[_Vector | None] = []
        for vector in vectors:
            if len(vector) != dims:
                raise EmbeddingError(
                    f"embedder returned a vector of {len(vector)} dims, not {dims}"
                )
            if not all(math.isfinite(x) for x in vector):
                raise EmbeddingError("embedder returned a vector with NaN or infinite values")
            out.append((model, tuple(float(x) for x in vector)) if any(vector) else None)
        return out

    # -- search ---------------------------------------------------------------------------------

    async def _search(
        self,
        query: str,
        rows: Sequence[tuple[int, _T, Sequence[tuple[str, float]], _Vector | None]],
        limit: int,
    ) -> SearchResult[_T]:
        """Rank ``(id, item, weighted texts, vector)`` rows and fuse the rankings."""
        (wanted,) = await self._embed([query])
        scored: dict[str, list[tuple[float, int]]] = {"fts": [], "trgm": []}
        if wanted is not None:
            scored["vec"] = []
        for row_id, _, texts, vector in rows:
            fts = fts_score(query, texts)
            if fts > 0:
                scored["fts"].append((fts, row_id))
            trgm = word_similarity(query, " ".join(t for t, _ in texts))
            if trgm >= TRGM_THRESHOLD:
                scored["trgm"].append((trgm, row_id))
            if wanted is not None and vector is not None and vector[0] == wanted[0]:
                sim = cosine(wanted[1], vector[1])
                if sim >= self._min_vector:
                    scored["vec"].append((sim, row_id))
        items = {row_id: item for row_id, item, _, _ in rows}
        ranks: dict[int, dict[str, int]] = {}
        scores: dict[int, dict[str, float]] = {}
        for name, found in scored.items():
            found.sort(key=lambda pair: (-pair[0], -pair[1]))
            for rank, (score, row_id) in enumerate(found[:limit], start=1):
                ranks.setdefault(row_id, {})[name] = rank
                scores.setdefault(row_id, {})[name] = score
        fused = fuse_ranks(ranks, tiebreak=lambda row_id: -row_id, limit=limit)
        hits = tuple(Hit(items[i], ranks[i], scores[i]) for i, _ in fused)
        return SearchResult(hits, self.vector_status)

    # -- sessions -------------------------------------------------------------------------------

    def _session(self, session_id: str) -> None:
        if session_id not in self._sessions:
            self._sessions[session_id] = MemorySession(session_id, "", {}, self._now())
            self._next_seq[session_id] = 1

    async def ensure_session(
        self, session_id: str, *, title: str = "", metadata: Mapping[str, Any] | None = None
    ) -> MemorySession:
        """Create the memory session, or return it (title and metadata updated when given).
        Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        _text("session_id", session_id)
        meta = None if metadata is None else _stored_json("metadata", dict(metadata))
        self._session(session_id)
        current = self._sessions[session_id]
        current = dataclasses.replace(
            current,
            title=title or current.title,
            metadata=current.metadata if meta is None else meta,
        )
        self._sessions[session_id] = current
        return current

    # -- messages -------------------------------------------------------------------------------

    async def add_messages(self, session_id: str, messages: Sequence[NewMessage]) -> list[Message]:
        """Append messages (the session is created if missing), numbered in order.
        Cancellation: nothing is written (embeddings are computed first)."""
        _text("session_id", session_id)
        for m in messages:
            if not isinstance(m, NewMessage):
                raise InvalidArgumentError(f"expected NewMessage, got {type(m).__name__}")
        metas = [_stored_json("metadata", dict(m.metadata)) for m in messages]
        vectors = await self._embed([m.content for m in messages])
        if not messages:
            return []
        self._session(session_id)
        out = []
        for m, meta, vector in zip(messages, metas, vectors, strict=True):
            seq = self._next_seq[session_id]
            self._next_seq[session_id] = seq + 1
            message = Message(
                id=self._new_id("message"),
                session_id=session_id,
                seq=seq,
                role=MessageRole(m.role),
                content=m.content,
                content_hash=content_hash(m.content),
                metadata=meta,
                created_at=self._now(),
                expires_at=self._expiry(_ttl(m.ttl)),
            )
            self._messages[message.id] = (message, vector)
            out.append(message)
        return out

    def _live_messages(self, session_id: str | None) -> list[tuple[Message, _Vector | None]]:
        return [
            (m, v)
            for m, v in self._messages.values()
            if (session_id is None or m.session_id == session_id) and self._live(m.expires_at)
        ]

    async def get_messages(
        self, session_id: str, *, limit: int | None = None, after_seq: int = 0
    ) -> list[Message]:
        """Live messages in order; ``limit`` keeps the newest. Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        _text("session_id", session_id)
        if limit is not None:
            _limit(limit)
        found = sorted(
            (m for m, _ in self._live_messages(session_id) if m.seq > after_seq),
            key=lambda m: m.seq,
        )
        return found if limit is None else found[-limit:]

    async def search_messages(
        self, query: str, *, session_id: str | None = None, limit: int = 20
    ) -> SearchResult[Message]:
        """Search live messages; hits best first. Cancellation: nothing happens."""
        _text("query", query)
        _limit(limit)
        if session_id is not None:
            _text("session_id", session_id)
        rows = [(m.id, m, [(m.content, 1.0)], v) for m, v in self._live_messages(session_id)]
        return await self._search(query, rows, limit)

    # -- context facts --------------------------------------------------------------------------

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
        """Insert or replace the fact (a live one keeps its ``created_at``).
        Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        _text("session_id", session_id)
        _text("fact_type", fact_type)
        _text("key", key)
        expiry = self._expiry(_ttl(ttl))
        stored = _stored_json("value", value)
        self._session(session_id)
        old = self._facts.get((session_id, fact_type, key))
        now = self._now()
        created = old.created_at if old is not None and self._live(old.expires_at) else now
        fact = ContextFact(session_id, fact_type, key, stored, bool(pinned), created, now, expiry)
        self._facts[(session_id, fact_type, key)] = fact
        return fact

    async def get_fact(self, session_id: str, fact_type: str, key: str) -> ContextFact | None:
        """The live fact, or None. Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        fact = self._facts.get((session_id, fact_type, key))
        return fact if fact is not None and self._live(fact.expires_at) else None

    async def list_facts(
        self, session_id: str, *, fact_type: str | None = None, pinned_only: bool = False
    ) -> list[ContextFact]:
        """Live facts, pinned first, then by type and key. Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        found = [
            f
            for (sid, ftype, _), f in self._facts.items()
            if sid == session_id
            and (fact_type is None or ftype == fact_type)
            and (f.pinned or not pinned_only)
            and self._live(f.expires_at)
        ]
        return sorted(found, key=lambda f: (not f.pinned, f.fact_type, f.key))

    async def delete_fact(self, session_id: str, fact_type: str, key: str) -> bool:
        """Delete a fact; True when a live one existed. Cancellation: nothing is deleted."""
        await trio.lowlevel.checkpoint()
        fact = self._facts.pop((session_id, fact_type, key), None)
        return fact is not None and self._live(fact.expires_at)

    # -- decisions ------------------------------------------------------------------------------

    def _insert_decision(self, new: NewDecision, vector: _Vector | None) -> Decision:
        if new.session_id is not None:
            self._session(new.session_id)
        now = self._now()
        decision = Decision(
            id=self._new_id("decision"),
            session_id=new.session_id,
            title=new.title,
            body=new.body,
            status=DecisionStatus(new.status),
            superseded_by=None,
            entities=tuple(new.entities),
            files=tuple(new.files),
            created_at=now,
            updated_at=now,
            expires_at=self._expiry(_ttl(new.ttl)),
        )
        self._decisions[decision.id] = (decision, vector)
        return decision

    def _live_decision(self, decision_id: int) -> Decision:
        stored = self._decisions.get(decision_id)
        if stored is None or not self._live(stored[0].expires_at):
            raise MemoryNotFoundError(f"no live decision {decision_id}")
        return stored[0]

    def _replace_decision(self, decision: Decision) -> Decision:
        self._decisions[decision.id] = (decision, self._decisions[decision.id][1])
        return decision

    async def add_decision(self, decision: NewDecision) -> Decision:
        """Record a decision. Cancellation: nothing is written (the embedding comes first)."""
        if not isinstance(decision, NewDecision):
            raise InvalidArgumentError(f"expected NewDecision, got {type(decision).__name__}")
        (vector,) = await self._embed([f"{decision.title}\n{decision.body}"])
        return self._insert_decision(decision, vector)

    async def get_decision(self, decision_id: int) -> Decision:
        """A live decision (raises :class:`MemoryNotFoundError`). Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        return self._live_decision(decision_id)

    async def close_decision(self, decision_id: int) -> Decision:
        """Mark it closed (a closed one is unchanged); a superseded one raises
        :class:`DecisionStateError`. Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        current = self._live_decision(decision_id)
        if current.status is DecisionStatus.SUPERSEDED:
            raise DecisionStateError(f"decision {decision_id} is superseded; it cannot close")
        if current.status is DecisionStatus.CLOSED:
            return current
        closed = dataclasses.replace(current, status=DecisionStatus.CLOSED, updated_at=self._now())
        return self._replace_decision(closed)

    async def supersede_decision(self, decision_id: int, replacement: NewDecision) -> Decision:
        """Record ``replacement`` (in the replaced decision's session unless it names one) and
        mark ``decision_id`` superseded by it, atomically; return the new decision.
        Cancellation: nothing is written (the embedding comes first)."""
        if not isinstance(replacement, NewDecision):
            raise InvalidArgumentError(f"expected NewDecision, got {type(replacement).__name__}")
        (vector,) = await self._embed([f"{replacement.title}\n{replacement.body}"])
        current = self._live_decision(decision_id)
        if current.status is DecisionStatus.SUPERSEDED:
            raise DecisionStateError(
                f"decision {decision_id} is already superseded; supersede its successor"
            )
        if replacement.session_id is None:
            replacement = dataclasses.replace(replacement, session_id=current.session_id)
        new = self._insert_decision(replacement, vector)
        self._replace_decision(
            dataclasses.replace(
                current,
                status=DecisionStatus.SUPERSEDED,
                superseded_by=new.id,
                updated_at=self._now(),
            )
        )
        return new

    async def decision_chain(self, decision_id: int) -> list[Decision]:
        """The live decisions of the chain through ``decision_id``, oldest first (expired links
        are left out). Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        self._live_decision(decision_id)
        replaced_by = {
            d.superseded_by: d.id for d, _ in self._decisions.values() if d.superseded_by
        }
        back: list[int] = []
        current: int | None = replaced_by.get(decision_id)
        while current is not None and current not in back:
            back.append(current)
            current = replaced_by.get(current)
        chain = [*reversed(back), decision_id]
        following = self._decisions[decision_id][0].superseded_by
        while following is not None and following in self._decisions and following not in chain:
            chain.append(following)
            following = self._decisions[following][0].superseded_by
        found = (self._decisions[i][0] for i in chain)
        return [d for d in found if self._live(d.expires_at)]

    async def search_decisions(
        self,
        query: str,
        *,
        session_id: str | None = None,
        include_superseded: bool = False,
        limit: int = 20,
    ) -> SearchResult[Decision]:
        """Search live decisions (title weighing more than body). Cancellation: nothing happens."""
        _text("query", query)
        _limit(limit)
        if session_id is not None:
            _text("session_id", session_id)
        rows = [
            (d.id, d, [(d.title, 1.0), (d.body, 0.4)], v)
            for d, v in self._decisions.values()
            if (session_id is None or d.session_id == session_id)
            and (include_superseded or d.status is not DecisionStatus.SUPERSEDED)
            and self._live(d.expires_at)
        ]
        return await self._search(query, rows, limit)

    # -- preferences ----------------------------------------------------------------------------

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
        """Insert or replace a preference; a live one keeps its usage count.
        Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        _text("user_id", user_id)
        _text("key", key)
        _text("source", source)
        expiry = self._expiry(_ttl(ttl))
        if isinstance(confidence, bool) or not 0.0 <= confidence <= 1.0:
            raise InvalidArgumentError(f"confidence must be within [0, 1], got {confidence!r}")
        stored = _stored_json("value", value)
        old = self._preferences.get((user_id, key))
        keep = old is not None and self._live(old.expires_at)
        now = self._now()
        pref = Preference(
            user_id=user_id,
            key=key,
            value=stored,
            confidence=float(confidence),
            source=source,
            usage_count=old.usage_count if keep and old else 0,
            last_used_at=old.last_used_at if keep and old else None,
            created_at=old.created_at if keep and old else now,
            updated_at=now,
            expires_at=expiry,
        )
        self._preferences[(user_id, key)] = pref
        return pref

    async def get_preference(
        self, user_id: str, key: str, *, record_use: bool = True
    ) -> Preference | None:
        """The live preference (counting a use unless ``record_use`` is false), or None.
        Cancellation: nothing is counted."""
        await trio.lowlevel.checkpoint()
        pref = self._preferences.get((user_id, key))
        if pref is None or not self._live(pref.expires_at):
            return None
        if record_use:
            pref = dataclasses.replace(
                pref, usage_count=pref.usage_count + 1, last_used_at=self._now()
            )
            self._preferences[(user_id, key)] = pref
        return pref

    async def list_preferences(
        self, user_id: str, *, min_confidence: float = 0.0
    ) -> list[Preference]:
        """Live preferences, most confident first (then most used). Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        found = [
            p
            for (uid, _), p in self._preferences.items()
            if uid == user_id and p.confidence >= min_confidence and self._live(p.expires_at)
        ]
        return sorted(found, key=lambda p: (-p.confidence, -p.usage_count, p.key))

    # -- retrieval cache ------------------------------------------------------------------------

    async def cache_get(self, key: str) -> Any | None:
        """A live retrieval-cache value, or None. Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        entry = self._cache.get(key)
        if entry is None or entry[1] <= self._clock():
            return None
        return json.loads(canonical_json(entry[0]))

    async def cache_put(self, key: str, value: Any, *, ttl: float) -> None:
        """Store a value for ``ttl`` seconds, replacing any. Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        _text("key", key)
        if ttl is None:
            raise InvalidArgumentError("retrieval-cache entries need a ttl")
        seconds = _ttl(ttl)
        assert seconds is not None
        self._cache[key] = (_stored_json("value", value), self._clock() + seconds)

    # -- sweeping -------------------------------------------------------------------------------

    async def sweep_expired(self) -> SweepReport:
        """Delete expired rows of every family, counted under the PostgreSQL table names.
        Cancellation: nothing is deleted."""
        await trio.lowlevel.checkpoint()
        now = self._clock()

        def sweep(rows: dict[Any, Any], expired: Callable[[Any], bool]) -> int:
            doomed = [k for k, v in rows.items() if expired(v)]
            for k in doomed:
                del rows[k]
            return len(doomed)

        def gone(expires_at: datetime | None) -> bool:
            return expires_at is not None and expires_at.timestamp() <= now

        return SweepReport(
            {
                "memory_messages": sweep(self._messages, lambda mv: gone(mv[0].expires_at)),
                "memory_context_facts": sweep(self._facts, lambda f: gone(f.expires_at)),
                "memory_decisions": sweep(self._decisions, lambda dv: gone(dv[0].expires_at)),
                "memory_preferences": sweep(self._preferences, lambda p: gone(p.expires_at)),
                "memory_retrieval_cache": sweep(self._cache, lambda e: e[1] <= now),
            }
        )


if TYPE_CHECKING:

    def _conforms(store: InMemoryMemoryStore) -> MemoryStore:
        return store
