"""The daemon's memory operations: ``remember``, ``recall``, ``decide``, ``rehydrate``,
``cache_lookup`` and ``cache_store`` turned into memory store, rehydrator and generation cache
calls, answers made JSON-ready.

**Scope.** A session reference is resolved with :meth:`~engine._scribe._scribe.Scribe.resolve`; the
Scribe session id is the memory session id. A repository path is reduced to its work tree's root
(what a session on it records as its ``repo_path``), so a path anywhere inside the tree names the
same repository; a path outside any work tree (or that git cannot probe within
:data:`REPO_PROBE_TIMEOUT`) stands for itself, resolved. Memory written:

- with a session: in that session, tagged with the repository of its work tree (or with ``repo``
  when the session has none; a ``repo`` other than the session's work tree is refused);
- with only a repository: in that repository's own memory session, ``repo:<root>``;
- with neither: in the daemon's default memory session.

A search with ``repo`` finds what any session on that repository remembered; with a session too,
also what that session remembered (on whatever work tree); without session and repo it searches
every session (facts, which have no ranked search: the default session).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final, final

import msgspec
import trio

import adapters

from .._core._concurrently import concurrently
from .._core._errors import InvalidArgumentError
from .._core._limiter import PriorityLimiter
from .._core._privacy import Privacy
from .._memory._fusion import fuse_ranks, pooled_ranks
from .._memory._generation_cache import GenerationCache, generation_key
from .._memory._rehydrator import rehydrate
from .._ports._git_errors import NotARepositoryError, StaleLockError
from .._ports._memory_records import (
    ContextFact,
    NewDecision,
    NewMessage,
    VectorStatus,
)
from .._ports._memory_store import MemorySource, MemoryStore
from .._scribe._scribe import Scribe
from ._recall_hits import RECALL_BYTES, clipped, decision_dict, fact_dict, fact_text, message_dict

__all__ = ["REPO_PROBE_TIMEOUT", "REPO_SESSION_PREFIX", "ControlMemory", "fact_key"]

#: The longest git may take to find a repository path's work tree root.
REPO_PROBE_TIMEOUT: Final = 5.0
#: How many paths' work tree roots are remembered (the oldest forgotten first).
_ROOTS_KEPT: Final = 1024
#: The memory session of memory given only a repository: this prefix, then the work tree root.
REPO_SESSION_PREFIX: Final = "repo:"
_WORD: Final = re.compile(r"\w+")
_TERM: Final = re.compile(r"\w{3,}")
_json: Final = msgspec.json.Encoder(enc_hook=str)

Op = Callable[[Any], Awaitable[Any]]
RepoRoot = Callable[[Path], Awaitable[Path]]


def fact_key(text: str) -> str:
    """The key of a fact remembered without one: its first words and a hash of the whole text, so
    the same text is one fact (``deploy-with-helm-3f2a9c1d``)."""
    words = "-".join(_WORD.findall(text.lower())[:8])[:60].strip("-")
    return f"{words or 'fact'}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


async def _nothing() -> None:
    await trio.lowlevel.checkpoint()


async def _git_root(path: Path, gate: PriorityLimiter) -> Path:
    return (await adapters.open_repository(path, gate=gate)).root


@final
class ControlMemory:
    """Answers the memory control operations (:data:`ops`).

    Args:
        memory: the memory store.
        sources: the rehydrator's memory sources.
        cache: the generation cache.
        scribe: resolves session references.
        default_session: the memory session of memory given neither a session nor a repository.
        repo_root: the work tree root of a path (default: asked of git through the engine's
            ``git`` gate); raises :class:`~engine.NotARepositoryError` for a path outside one.
        privacy: what scrubs remembered and decided text before it is stored (default: Privacy()).
    """

    def __init__(
        self,
        *,
        memory: MemoryStore,
        sources: Sequence[MemorySource],
        cache: GenerationCache,
        scribe: Scribe,
        default_session: str,
        repo_root: RepoRoot | None = None,
        privacy: Privacy | None = None,
    ) -> None:
        self.memory = memory
        self.privacy = Privacy() if privacy is None else privacy
        self.sources = list(sources)
        self.cache = cache
        self.scribe = scribe
        self.default_session = default_session
        gate = scribe.engine.gate("git")
        self._repo_root = repo_root or (lambda path: _git_root(path, gate))
        self._roots: dict[str, str] = {}
        self.ops: dict[str, Op] = {
            "remember": self._remember,
            "recall": self._recall,
            "decide": self._decide,
            "rehydrate": self._rehydrate,
            "cache_lookup": self._cache_lookup,
            "cache_store": self._cache_store,
        }

    # -- scope ----------------------------------------------------------------------------------

    async def repo_key(self, path: str) -> str:
        """The repository ``path`` names: its work tree's root, or the resolved path itself.

        A root found is remembered for the path (the last :data:`_ROOTS_KEPT` paths), so a path
        asked for again costs no git process.

        Raises:
            InvalidArgumentError: ``path`` is not absolute.

        Cancellation: the git probe is killed; nothing is changed.
        """
        if not os.path.isabs(path) or "\0" in path:
            raise InvalidArgumentError(f"repo must be an absolute path, got {path[:200]!r}")
        known = self._roots.get(path)
        if known is not None:
            return known
        with trio.move_on_after(REPO_PROBE_TIMEOUT):
            try:
                root = str(await self._repo_root(Path(path)))
            except (NotARepositoryError, StaleLockError):
                pass
            else:
                if len(self._roots) >= _ROOTS_KEPT:
                    del self._roots[next(iter(self._roots))]
                self._roots[path] = root
                return root
        return await trio.to_thread.run_sync(os.path.realpath, path)

    async def _scope(
        self, session: str | None, repo: str | None
    ) -> tuple[str | None, str | None, str | None]:
        """The session ``session`` names, the work tree it watches and the repository ``repo``
        names (each None when not given or not there)."""
        sid = tree = None
        if session is not None:
            record = await self.scribe.resolve(session)
            sid, tree = record.id, None if record.repo_path is None else str(record.repo_path)
        key = None if repo is None else await self.repo_key(repo)
        return sid, tree, key

    async def _read_scope(
        self, session: str | None, repo: str | None
    ) -> tuple[str | None, str | None]:
        """The memory session id and repository a search is narrowed to (both: either's)."""
        sid, _, key = await self._scope(session, repo)
        return sid, key

    async def _write_scope(self, session: str | None, repo: str | None) -> tuple[str, str | None]:
        """Where memory is written, and the repository it belongs to (its memory session is
        made to carry it)."""
        sid, tree, key = await self._scope(session, repo)
        if tree is not None and key is not None and tree != key:
            raise InvalidArgumentError(f"session {sid} works on {tree}, not on {key}")
        key = tree or key
        if sid is None:
            sid = self.default_session if key is None else REPO_SESSION_PREFIX + key
        if key is not None:
            await self.memory.ensure_session(sid, repo=key)
        return sid, key

    def _scrubbed(self, a: Any, *names: str) -> Any:
        scrub = self.privacy.scrub_value  # what is kept never holds private text
        return msgspec.structs.replace(a, **{n: scrub(getattr(a, n)) for n in names})

    # -- operations -----------------------------------------------------------------------------

    async def _remember(self, a: adapters.RememberArgs) -> Any:
        a = self._scrubbed(a, "text")
        if a.kind == "message" and (a.pinned or a.key is not None):
            raise InvalidArgumentError("only a fact has a key or can be pinned (kind: fact)")
        sid, repo = await self._write_scope(a.session, a.repo)
        if a.kind == "message":
            (message,) = await self.memory.add_messages(
                sid, [NewMessage(role=a.role, content=a.text, ttl=a.ttl)]
            )
            return {
                "kind": "message",
                "id": message.id,
                "session_id": sid,
                "repo": repo,
                "seq": message.seq,
            }
        key = a.key or fact_key(a.text)
        fact = await self.memory.set_fact(sid, a.fact_type, key, a.text, pinned=a.pinned, ttl=a.ttl)
        return {
            "kind": "fact",
            "id": f"{fact.fact_type}/{fact.key}",
            "session_id": sid,
            "repo": repo,
            "fact_type": fact.fact_type,
            "key": fact.key,
            "pinned": fact.pinned,
        }

    async def _recall(self, a: adapters.RecallArgs) -> Any:
        sid, repo = await self._read_scope(a.session, a.repo)
        found: dict[tuple[str, str], dict[str, Any]] = {}
        ranks: dict[tuple[str, str], dict[str, int]] = {}
        scores: dict[tuple[str, str], Mapping[str, float]] = {}
        vector: VectorStatus | None = None
        wants = {kind: a.kind in (kind, "all") for kind in ("messages", "decisions", "facts")}
        messages, decisions, facts = await concurrently(  # each on its own pooled connection
            partial(self.memory.search_messages, a.query, session_id=sid, repo=repo, limit=a.k)
            if wants["messages"]
            else _nothing,
            partial(
                self.memory.search_decisions,
                a.query,
                session_id=sid,
                repo=repo,
                include_superseded=a.include_superseded,
                limit=a.k,
            )
            if wants["decisions"]
            else _nothing,
            partial(self._matching_facts, a.query, sid, repo, a.k) if wants["facts"] else _nothing,
        )
        for kind, result, as_dict in (
            ("message", messages, message_dict),
            ("decision", decisions, decision_dict),
        ):
            if result is None:
                continue
            vector = vector or result.vector
            for hit in result.hits:
                key = (kind, str(hit.item.id))
                ranks[key], scores[key], found[key] = dict(hit.ranks), hit.scores, as_dict(hit.item)
        if facts is not None:
            for position, fact in enumerate(facts):
                cited = f"{fact.session_id}/{fact.fact_type}/{fact.key}"
                ranks[("fact", cited)] = {"words": position + 1}
                found[("fact", cited)] = fact_dict(fact)
        ranks, order = pooled_ranks(ranks, scores), {"message": 0, "decision": 1, "fact": 2}
        fused = fuse_ranks(ranks, tiebreak=lambda item: order[item[0]], limit=a.k)
        hits: list[dict[str, Any]] = []
        size = 0
        for item, score in fused:
            hit = found[item] | {"ranks": ranks[item], "score": score}
            encoded = len(_json.encode(hit))
            if encoded > RECALL_BYTES:
                hit = clipped(hit)
                encoded = len(_json.encode(hit))
            size += encoded
            if hits and size > RECALL_BYTES:
                break
            hits.append(hit)
        return {
            "hits": hits,
            "more": len(hits) < len(fused),
            "vector": (vector or self.memory.vector_status).value,
        }

    async def _matching_facts(
        self, query: str, sid: str | None, repo: str | None, k: int
    ) -> list[ContextFact]:
        """The facts of the scope sharing words with ``query``, most shared first."""
        scope = sid if sid is not None or repo is not None else self.default_session
        facts = await self.memory.list_facts(scope, repo=repo)
        terms = set(_TERM.findall(query.lower()))
        scored = []
        for fact in facts:
            words = set(_TERM.findall(f"{fact.fact_type} {fact.key} {fact_text(fact)}".lower()))
            overlap = len(terms & words)
            if overlap:
                scored.append((-overlap, not fact.pinned, fact.session_id, fact.key, fact))
        scored.sort(key=lambda t: t[:4])
        return [t[-1] for t in scored[:k]]

    async def _decide(self, a: adapters.DecideArgs) -> Any:
        a = self._scrubbed(a, "text", "body", "files", "entities")
        sid: str | None
        repo: str | None
        if a.supersedes is not None and a.session is None and a.repo is None:
            sid, repo = None, None  # the replacement stays where the decision it replaces is
        else:
            sid, repo = await self._write_scope(a.session, a.repo)
        decision = NewDecision(
            title=a.text,
            body=a.body,
            session_id=sid,
            entities=tuple(a.entities),
            files=tuple(a.files),
            ttl=a.ttl,
        )
        if a.supersedes is not None:
            stored = await self.memory.supersede_decision(a.supersedes, decision)
        else:
            stored = await self.memory.add_decision(decision)
        return decision_dict(stored) | {"supersedes": a.supersedes, "repo": repo}

    async def _rehydrate(self, a: adapters.RehydrateArgs) -> Any:
        sid, repo = await self._read_scope(a.session, a.repo)
        bundle = await rehydrate(
            a.query,
            sources=self.sources,
            session=sid,
            repo=repo,
            role=a.role,
            token_budget=a.budget,
            timeout=a.timeout,
        )
        return bundle.to_dict() | {"text": bundle.text, "repo": repo}

    async def _cache_lookup(self, a: adapters.CacheLookupArgs) -> Any:
        # scrubbed as a store scrubs it, so the same prompt finds what was stored
        a = self._scrubbed(a, "prompt", "settings")
        found = await self.cache.lookup(a.prompt, a.model, a.settings)
        if found is None:
            key = generation_key(a.prompt, a.model, a.settings)
            miss = {"hit": False, "outcome": None, "response": None, "similarity": None}
            return miss | {"key": key, "matched_key": None}
        return {
            "hit": True,
            "outcome": found.outcome.value,
            "response": found.text,
            "similarity": found.similarity,
            "key": found.key,
            "matched_key": found.matched_key,
        }

    async def _cache_store(self, a: adapters.CacheStoreArgs) -> Any:
        a = self._scrubbed(a, "prompt", "settings", "response")
        key = await self.cache.store(a.prompt, a.model, a.settings, a.response, ttl=a.ttl)
        return {"key": key}
