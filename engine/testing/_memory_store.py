"""Conversation memory in memory: :class:`engine.MemoryStore` with expiry, supersession and search.

One concept, the store: the protocol's twenty calls over five record families (messages, facts,
decisions, preferences, the retrieval cache) that share one clock, one expiry rule and one sweep,
which is why it runs past 400 lines. Decisions and their chains live in :mod:`._memory_decisions`,
the rules in :mod:`._memory_rules`, and the searches' rankings in :mod:`._text_ranking`, fused by
the engine's one reciprocal rank fusion, :func:`engine.fuse_ranks`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, final

import trio

# The public names, not their modules: memory records and rules may move between engine modules.
from .. import (
    QUERY_MAX,
    RETAINED_DECISIONS,
    RETAINED_MESSAGES,
    ContextFact,
    Decision,
    DecisionStatus,
    Embedder,
    EmbeddingError,
    InvalidArgumentError,
    MemoryRetention,
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
    check_confidence,
    check_fact_scope,
    check_limit,
    check_optional_limit,
    check_repo,
    check_text,
    check_ttl,
    content_hash,
)
from ._memory_decisions import DecisionTable
from ._memory_rules import MemoryClock, stored_json
from ._text_ranking import Vector, ranked_hits

__all__ = ["InMemoryMemoryStore"]

_T = TypeVar("_T")


def _check_fact_key(session_id: str, fact_type: str, key: str) -> None:
    check_text("session_id", session_id)
    check_text("fact_type", fact_type)
    check_text("key", key)


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
        self._time = MemoryClock(clock)
        self._sessions: dict[str, MemorySession] = {}
        self._next_seq: dict[str, int] = {}
        self._messages: dict[int, tuple[Message, Vector | None]] = {}
        self._facts: dict[tuple[str, str, str], ContextFact] = {}
        self._decisions = DecisionTable(self._time)
        self._preferences: dict[tuple[str, str], Preference] = {}
        self._cache: dict[str, tuple[Any, float]] = {}
        self._last_message = 0

    def __repr__(self) -> str:
        return f"<InMemoryMemoryStore: {len(self._messages)} messages>"

    # -- embeddings -----------------------------------------------------------------------------

    @property
    def vector_status(self) -> VectorStatus:
        """``used`` with an embedder, else ``no_embedder``."""
        return VectorStatus.NO_EMBEDDER if self._embedder is None else VectorStatus.USED

    async def _embed(self, texts: Sequence[str]) -> list[Vector | None]:
        """The vectors of ``texts`` (None for one without direction, or every one without an
        embedder). Cancellation: the embedder's."""
        if self._embedder is None or not texts:
            await trio.lowlevel.checkpoint()
            return [None] * len(texts)
        vectors = await self._embedder.embed(list(texts))
        if len(vectors) != len(texts):
            raise EmbeddingError(f"embedder returned {len(vectors)} vectors for {len(texts)} texts")
        dims, model = self._embedder.dimensions, self._embedder.model
        out: list[Vector | None] = []
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
        rows: Sequence[tuple[int, _T, Sequence[tuple[str, float]], Vector | None]],
        limit: int,
    ) -> SearchResult[_T]:
        """Rank ``(id, item, weighted texts, vector)`` rows and fuse the rankings."""
        (wanted,) = await self._embed([query])
        hits = ranked_hits(query, rows, limit, query_vector=wanted, min_vector=self._min_vector)
        return SearchResult(hits, self.vector_status)

    # -- sessions -------------------------------------------------------------------------------

    def _session(self, session_id: str) -> None:
        if session_id not in self._sessions:
            self._sessions[session_id] = MemorySession(session_id, "", {}, self._time.now())
            self._next_seq[session_id] = 1

    async def ensure_session(
        self,
        session_id: str,
        *,
        title: str = "",
        metadata: Mapping[str, Any] | None = None,
        repo: str | None = None,
    ) -> MemorySession:
        """Create the memory session, or return it (title, metadata and repository updated when
        given). Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        check_text("session_id", session_id)
        check_repo(repo)
        meta = None if metadata is None else stored_json("metadata", dict(metadata))
        self._session(session_id)
        current = self._sessions[session_id]
        current = dataclasses.replace(
            current,
            title=title or current.title,
            metadata=current.metadata if meta is None else meta,
            repo=current.repo if repo is None else repo,
        )
        self._sessions[session_id] = current
        return current

    # -- messages -------------------------------------------------------------------------------

    async def add_messages(
        self, session_id: str, messages: Sequence[NewMessage], *, embed: bool = True
    ) -> list[Message]:
        """Append messages (the session is created if missing), numbered in order; a message
        whose source id the session already has is skipped (``embed`` false: stored without
        vectors).
        Cancellation: nothing is written (embeddings are computed first)."""
        check_text("session_id", session_id)
        for m in messages:
            if not isinstance(m, NewMessage):
                raise InvalidArgumentError(f"expected NewMessage, got {type(m).__name__}")
        metas = [stored_json("metadata", dict(m.metadata)) for m in messages]
        known = {
            stored.source_id
            for stored, _ in self._messages.values()
            if stored.session_id == session_id and stored.source_id is not None
        }
        kept = []
        for m, meta in zip(messages, metas, strict=True):
            if m.source_id is not None:
                if m.source_id in known:
                    continue
                known.add(m.source_id)
            kept.append((m, meta))
        vectors = await self._embed([m.content for m, _ in kept] if embed else [])
        vectors = vectors or [None] * len(kept)
        if not kept:
            return []
        self._session(session_id)
        out = []
        # Checked again: another call may have stored a source id while this one embedded.
        stored_now = {
            stored.source_id
            for stored, _ in self._messages.values()
            if stored.session_id == session_id and stored.source_id is not None
        }
        for (m, meta), vector in zip(kept, vectors, strict=True):
            if m.source_id is not None and m.source_id in stored_now:
                continue
            self._last_message += 1
            seq = self._next_seq[session_id]
            self._next_seq[session_id] = seq + 1
            message = Message(
                id=self._last_message,
                session_id=session_id,
                seq=seq,
                role=MessageRole(m.role),
                content=m.content,
                content_hash=content_hash(m.content),
                metadata=meta,
                created_at=self._time.now(),
                expires_at=self._time.expiry(check_ttl(m.ttl)),
                source_id=m.source_id,
            )
            self._messages[message.id] = (message, vector)
            out.append(message)
        return out

    def _in_scope(self, row_session: str | None, session_id: str | None, repo: str | None) -> bool:
        """Whether a row of ``row_session`` is in the scope: the session, the sessions carrying
        the repository, either of the two when both are given, every row when neither is."""
        if session_id is None and repo is None:
            return True
        if session_id is not None and row_session == session_id:
            return True
        found = None if row_session is None or repo is None else self._sessions.get(row_session)
        return found is not None and found.repo == repo

    def _live_messages(
        self, session_id: str | None, repo: str | None = None
    ) -> list[tuple[Message, Vector | None]]:
        return [
            (m, v)
            for m, v in self._messages.values()
            if self._in_scope(m.session_id, session_id, repo) and self._time.live(m.expires_at)
        ]

    async def get_messages(
        self, session_id: str, *, limit: int | None = None, after_seq: int = 0
    ) -> list[Message]:
        """Live messages in order; ``limit`` keeps the newest. Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        check_text("session_id", session_id)
        limit = check_optional_limit(limit)
        found = sorted(
            (m for m, _ in self._live_messages(session_id) if m.seq > after_seq),
            key=lambda m: m.seq,
        )
        return found if limit is None else found[-limit:]

    async def search_messages(
        self,
        query: str,
        *,
        session_id: str | None = None,
        repo: str | None = None,
        limit: int = 20,
    ) -> SearchResult[Message]:
        """Search live messages (of a session, a repository, or either); hits best first.
        Cancellation: nothing happens."""
        check_text("query", query, maximum=QUERY_MAX)
        check_limit(limit)
        check_repo(repo)
        if session_id is not None:
            check_text("session_id", session_id)
        live = self._live_messages(session_id, repo)
        rows = [(m.id, m, [(m.content, 1.0)], v) for m, v in live]
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
        _check_fact_key(session_id, fact_type, key)
        expiry = self._time.expiry(check_ttl(ttl))
        stored = stored_json("value", value)
        self._session(session_id)
        old = self._facts.get((session_id, fact_type, key))
        now = self._time.now()
        created = old.created_at if old is not None and self._time.live(old.expires_at) else now
        fact = ContextFact(session_id, fact_type, key, stored, bool(pinned), created, now, expiry)
        self._facts[(session_id, fact_type, key)] = fact
        return fact

    async def get_fact(self, session_id: str, fact_type: str, key: str) -> ContextFact | None:
        """The live fact, or None. Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        _check_fact_key(session_id, fact_type, key)
        fact = self._facts.get((session_id, fact_type, key))
        return fact if fact is not None and self._time.live(fact.expires_at) else None

    async def list_facts(
        self,
        session_id: str | None,
        *,
        repo: str | None = None,
        fact_type: str | None = None,
        pinned_only: bool = False,
    ) -> list[ContextFact]:
        """Live facts of a session, a repository or either, pinned first, then by type, key and
        session. Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        check_fact_scope(session_id, repo)
        if fact_type is not None:
            check_text("fact_type", fact_type)
        found = [
            f
            for (sid, ftype, _), f in self._facts.items()
            if self._in_scope(sid, session_id, repo)
            and (fact_type is None or ftype == fact_type)
            and (f.pinned or not pinned_only)
            and self._time.live(f.expires_at)
        ]
        return sorted(found, key=lambda f: (not f.pinned, f.fact_type, f.key, f.session_id))

    async def delete_fact(self, session_id: str, fact_type: str, key: str) -> bool:
        """Delete a fact; True when a live one existed. Cancellation: nothing is deleted."""
        await trio.lowlevel.checkpoint()
        _check_fact_key(session_id, fact_type, key)
        fact = self._facts.pop((session_id, fact_type, key), None)
        return fact is not None and self._time.live(fact.expires_at)

    # -- decisions ------------------------------------------------------------------------------

    async def add_decision(self, decision: NewDecision) -> Decision:
        """Record a decision. Cancellation: nothing is written (the embedding comes first)."""
        if not isinstance(decision, NewDecision):
            raise InvalidArgumentError(f"expected NewDecision, got {type(decision).__name__}")
        (vector,) = await self._embed([f"{decision.title}\n{decision.body}"])
        if decision.session_id is not None:
            self._session(decision.session_id)
        return self._decisions.insert(decision, vector)

    async def get_decision(self, decision_id: int) -> Decision:
        """A live decision (raises :class:`MemoryNotFoundError`). Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        return self._decisions.live(decision_id)

    async def close_decision(self, decision_id: int) -> Decision:
        """Mark it closed (a closed one is unchanged); a superseded one raises
        :class:`DecisionStateError`. Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        return self._decisions.close(decision_id)

    async def supersede_decision(self, decision_id: int, replacement: NewDecision) -> Decision:
        """Record ``replacement`` (in the replaced decision's session unless it names one) and
        mark ``decision_id`` superseded by it, atomically; return the new decision.
        Cancellation: nothing is written (the embedding comes first)."""
        if not isinstance(replacement, NewDecision):
            raise InvalidArgumentError(f"expected NewDecision, got {type(replacement).__name__}")
        (vector,) = await self._embed([f"{replacement.title}\n{replacement.body}"])
        return self._decisions.supersede(decision_id, replacement, vector)

    async def decision_chain(self, decision_id: int) -> list[Decision]:
        """The live decisions of the chain through ``decision_id``, oldest first (expired links
        are left out). Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        return self._decisions.chain(decision_id)

    async def open_decisions(
        self, *, session_id: str | None = None, repo: str | None = None, limit: int = 20
    ) -> list[Decision]:
        """The live open decisions of a session, a repository or either, newest first.
        Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        check_limit(limit)
        check_repo(repo)
        if session_id is not None:
            check_text("session_id", session_id)
        found = [
            d
            for d, _ in self._decisions.rows.values()
            if self._in_scope(d.session_id, session_id, repo)
            and d.status is DecisionStatus.OPEN
            and self._time.live(d.expires_at)
        ]
        found.sort(key=lambda d: (d.created_at, d.id), reverse=True)
        return found[:limit]

    async def search_decisions(
        self,
        query: str,
        *,
        session_id: str | None = None,
        repo: str | None = None,
        include_superseded: bool = False,
        limit: int = 20,
    ) -> SearchResult[Decision]:
        """Search live decisions (of a session, a repository or either; title weighing more than
        body). Cancellation: nothing happens."""
        check_text("query", query, maximum=QUERY_MAX)
        check_limit(limit)
        check_repo(repo)
        if session_id is not None:
            check_text("session_id", session_id)
        rows = [
            (d.id, d, [(d.title, 1.0), (d.body, 0.4)], v)
            for d, v in self._decisions.rows.values()
            if self._in_scope(d.session_id, session_id, repo)
            and (include_superseded or d.status is not DecisionStatus.SUPERSEDED)
            and self._time.live(d.expires_at)
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
        check_text("user_id", user_id)
        check_text("key", key)
        check_text("source", source)
        expiry = self._time.expiry(check_ttl(ttl))
        confidence = check_confidence(confidence)
        stored = stored_json("value", value)
        old = self._preferences.get((user_id, key))
        keep = old is not None and self._time.live(old.expires_at)
        now = self._time.now()
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
        check_text("user_id", user_id)
        check_text("key", key)
        pref = self._preferences.get((user_id, key))
        if pref is None or not self._time.live(pref.expires_at):
            return None
        if record_use:
            pref = dataclasses.replace(
                pref, usage_count=pref.usage_count + 1, last_used_at=self._time.now()
            )
            self._preferences[(user_id, key)] = pref
        return pref

    async def list_preferences(
        self, user_id: str, *, min_confidence: float = 0.0
    ) -> list[Preference]:
        """Live preferences, most confident first (then most used). Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        check_text("user_id", user_id)
        found = [
            p
            for (uid, _), p in self._preferences.items()
            if uid == user_id and p.confidence >= min_confidence and self._time.live(p.expires_at)
        ]
        return sorted(found, key=lambda p: (-p.confidence, -p.usage_count, p.key))

    # -- retrieval cache ------------------------------------------------------------------------

    async def cache_get(self, key: str) -> Any | None:
        """A live retrieval-cache value, or None. Cancellation: nothing happens."""
        await trio.lowlevel.checkpoint()
        check_text("key", key)
        entry = self._cache.get(key)
        if entry is None or entry[1] <= self._time.seconds():
            return None
        return json.loads(canonical_json(entry[0]))

    async def cache_put(self, key: str, value: Any, *, ttl: float) -> None:
        """Store a value for ``ttl`` seconds, replacing any. Cancellation: nothing is written."""
        await trio.lowlevel.checkpoint()
        check_text("key", key)
        seconds = check_ttl(ttl, required=True)
        assert seconds is not None
        self._cache[key] = (stored_json("value", value), self._time.seconds() + seconds)

    # -- sweeping -------------------------------------------------------------------------------

    async def sweep_expired(self, retention: MemoryRetention | None = None) -> SweepReport:
        """Delete expired rows of every family, counted under the PostgreSQL table names, then
        what ``retention`` no longer keeps. Cancellation: nothing is deleted."""
        await trio.lowlevel.checkpoint()
        now = self._time.seconds()

        def sweep(rows: dict[Any, Any], expired: Callable[[Any], bool]) -> int:
            doomed = [k for k, v in rows.items() if expired(v)]
            for k in doomed:
                del rows[k]
            return len(doomed)

        def gone(expires_at: datetime | None) -> bool:
            return expires_at is not None and expires_at.timestamp() <= now

        def older(at: datetime, keep: float | None) -> bool:
            return keep is not None and at.timestamp() < now - keep

        deleted = {
            "memory_messages": sweep(self._messages, lambda mv: gone(mv[0].expires_at)),
            "memory_context_facts": sweep(self._facts, lambda f: gone(f.expires_at)),
            "memory_decisions": sweep(self._decisions.rows, lambda dv: gone(dv[0].expires_at)),
            "memory_preferences": sweep(self._preferences, lambda p: gone(p.expires_at)),
            "memory_retrieval_cache": sweep(self._cache, lambda e: e[1] <= now),
        }
        if retention is not None:
            deleted[RETAINED_MESSAGES] = sweep(
                self._messages, lambda mv: older(mv[0].created_at, retention.messages)
            )
            deleted[RETAINED_DECISIONS] = sweep(
                self._decisions.rows,
                lambda dv: (
                    dv[0].status is DecisionStatus.SUPERSEDED
                    and older(dv[0].updated_at, retention.superseded_decisions)
                ),
            )
        return SweepReport(deleted)


if TYPE_CHECKING:

    def _conforms(store: InMemoryMemoryStore) -> MemoryStore:
        return store
