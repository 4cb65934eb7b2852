"""The context provider: what a session's agent needs to know, gathered in parallel, kept live in memory.

For a session and a role, each *source* (branch, status, log, diff, worklog, summary, related sessions,
chosen files) runs through the one deadline fan-out (:func:`engine._core._gather.gather_sources`) under
its own deadline and reports ``ok``, ``error`` or ``timeout``; a failing source never fails the whole.
Results are kept per session in the live cache (:mod:`engine._context._cache`). The watcher dirties
only the sources a change touches (:meth:`ContextProvider.invalidate` with the :class:`Aspect` values it
saw), so an unchanged tree answers from memory and a small change re-runs only what it dirtied.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, final

import trio

from .._core._errors import InvalidArgumentError, SessionNotFoundError
from .._core._gather import SourceStatus
from .._scribe._rules import Aspect
from ._cache import LiveCache
from ._roles import RoleProfile
from ._runner import SourceRunner
from ._spec import SourceResult, SourceSpec

if TYPE_CHECKING:
    from .._core._engine import Engine
    from ._sources import ContextTarget

__all__ = ["Context", "ContextProvider", "ContextStatistics", "get_context_sync"]


@dataclass(frozen=True, slots=True)
class Context:
    """A session's context for one role.

    Attributes:
        session_id: the session.
        role: the role it was gathered for.
        sources: each source's result, in the role's order.
        elapsed: seconds the whole gather took.
        fresh_for: seconds until the first of its values with a ``max_age`` is due to run again
            (None: no source has one, so only a change the watcher sees makes it stale).
    """

    session_id: str
    role: str
    sources: Mapping[str, SourceResult]
    elapsed: float
    fresh_for: float | None = None

    @property
    def from_cache(self) -> bool:
        """Whether every source was served from memory."""
        return all(r.cached for r in self.sources.values())

    @property
    def ok(self) -> bool:
        """Whether every source answered."""
        return all(r.status is SourceStatus.OK for r in self.sources.values())

    def value(self, name: str) -> Any:
        """The value of source ``name`` (None if it did not answer)."""
        r = self.sources.get(name)
        return None if r is None else r.value

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "session_id": self.session_id,
            "role": self.role,
            "elapsed": self.elapsed,
            "from_cache": self.from_cache,
            "fresh_for": self.fresh_for,
            "sources": {name: r.as_dict() for name, r in self.sources.items()},
        }


@dataclass(frozen=True, slots=True)
class ContextStatistics:
    """Counters of a :class:`ContextProvider`.

    Attributes:
        sessions: sessions with a live cache.
        gathers: context requests answered.
        served_from_cache: source answers served from memory.
        fetched: source fetches run.
        errors: fetches that failed.
        timeouts: fetches that ran out of time.
        invalidations: sources dirtied by changes.
        refreshed: fetches that updated a cached value for changed paths only.
    """

    sessions: int
    gathers: int
    served_from_cache: int
    fetched: int
    errors: int
    timeouts: int
    invalidations: int
    refreshed: int


def _limit(value: Any, n: int, newest_last: bool) -> Any:
    if isinstance(value, list):
        return value[-n:] if newest_last else value[:n]
    return value


@final
class ContextProvider:
    """Gathers and caches sessions' context. Attach a session with :meth:`attach` (the scribe does).

    Args:
        engine: the engine (``session.context`` events are published on its stream).
        sources: every source by name (default: :func:`engine._context._sources.default_sources`).
        roles: every role's profile (default: :data:`engine._context._roles.DEFAULT_ROLES`).
        publish: publish ``session.context`` events.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        sources: Mapping[str, SourceSpec] | None = None,
        roles: Mapping[str, RoleProfile] | None = None,
        publish: bool = True,
    ) -> None:
        from ._roles import DEFAULT_ROLES
        from ._sources import default_sources

        self._engine = engine
        self._sources = dict(sources) if sources is not None else default_sources()
        self._roles = dict(roles) if roles is not None else dict(DEFAULT_ROLES)
        for role, profile in self._roles.items():
            unknown = [s for s in profile.sources if s not in self._sources]
            if unknown:
                raise InvalidArgumentError(f"role {role!r} names unknown sources {unknown}")
        self._publish = publish
        self._live = LiveCache(self._sources)
        self._runner = SourceRunner(self._sources)
        self._gathers = 0
        self._from_cache = 0

    @property
    def engine(self) -> Engine:
        """The engine this provider publishes on."""
        return self._engine

    @property
    def roles(self) -> tuple[str, ...]:
        """The role names."""
        return tuple(self._roles)

    @property
    def source_names(self) -> tuple[str, ...]:
        """Every source's name."""
        return tuple(self._sources)

    def role_files(self, backlog_id: str | None) -> tuple[str, ...]:
        """Every role's chosen files for a session with this backlog id (placeholders filled)."""
        out: dict[str, None] = {}
        for profile in self._roles.values():
            out.update(dict.fromkeys(profile.files_for(backlog_id)))
        return tuple(out)

    # -- sessions --------------------------------------------------------------------------------

    def attach(self, target: ContextTarget) -> None:
        """Start caching context for ``target.session_id`` (every source starts dirty)."""
        self._live.attach(target)

    def detach(self, session_id: str) -> None:
        """Stop caching context for the session (forget its values)."""
        self._live.detach(session_id)

    def attached(self, session_id: str) -> bool:
        """Whether the session has a live cache."""
        return self._live.get(session_id) is not None

    def dirty(self, session_id: str) -> frozenset[str]:
        """The sources that would run now for the session.

        Raises:
            SessionNotFoundError: the session is not attached.
        """
        cache = self._live.get(session_id)
        if cache is None:
            raise SessionNotFoundError(f"no context cache for session {session_id!r}")
        return frozenset(cache.dirty | cache.expired(self._sources))

    def sources_touched(
        self,
        target: ContextTarget,
        aspects: Collection[Aspect],
        paths: Collection[str] | None = (),
    ) -> frozenset[str]:
        """The sources a change dirties (a decision only; nothing is changed). ``paths`` None means
        the changed paths are unknown (a rescan): every path may have changed."""
        return self._live.sources_touched(target, aspects, paths)

    def invalidate(
        self,
        session_id: str,
        aspects: Collection[Aspect],
        paths: Collection[str] | None = (),
    ) -> frozenset[str]:
        """Dirty the sources that depend on ``aspects`` (and a path-scoped source when one of its files
        is in ``paths``, or when ``paths`` is None: unknown); return the sources newly dirtied. An
        unknown session is ignored."""
        newly = self._live.invalidate(session_id, aspects, paths)
        if newly and self._publish:
            self._engine.publish_nowait(
                "session.context",
                {"event": "dirty", "sources": sorted(newly)},
                session_id=session_id,
            )
        return newly

    def invalidate_all(self, aspects: Collection[Aspect]) -> None:
        """Dirty what ``aspects`` touch in every attached session (a registry change, say)."""
        for sid in self._live.session_ids():
            self.invalidate(sid, aspects)

    def note_entry(self, session_id: str, entry: Mapping[str, Any]) -> None:
        """Write-through: a worklog entry was stored; a cached worklog gets it without a query."""
        self._live.write_through(session_id, "worklog", lambda v: [*(v or []), dict(entry)][-200:])

    def note_summary(self, session_id: str, summary: Mapping[str, Any]) -> None:
        """Write-through: a summary was stored; a cached summary source gets it without a query."""
        self._live.write_through(session_id, "summary", lambda v: dict(summary))

    # -- gathering -------------------------------------------------------------------------------

    def profile(self, role: str) -> RoleProfile:
        """The profile of ``role``.

        Raises:
            InvalidArgumentError: no such role.
        """
        try:
            return self._roles[role]
        except KeyError:
            raise InvalidArgumentError(
                f"unknown role {role!r}; roles: {', '.join(self._roles)}"
            ) from None

    async def context(
        self,
        session_id: str,
        role: str = "implementer",
        *,
        target: ContextTarget | None = None,
        refresh: bool = False,
    ) -> Context:
        """The session's context for ``role``.

        Clean cached sources answer from memory; dirty ones run in parallel, each under its own
        deadline. Two callers asking at once share each running fetch.

        Args:
            session_id: an attached session, or any session when ``target`` is given (gathered without
                caching).
            role: planner, implementer, coder, researcher or reviewer (or a configured one).
            target: what to gather for a session that is not attached.
            refresh: run every source even if cached.

        Raises:
            InvalidArgumentError: unknown role.
            SessionNotFoundError: the session is not attached and no target is given.

        Cancellation: running fetches are cancelled; the cache keeps what it had, and a caller
        waiting on a cancelled fetch runs it itself.
        """
        profile = self.profile(role)
        started = trio.current_time()
        self._gathers += 1
        cache = self._live.get(session_id)
        transient = cache is None
        if cache is None:
            if target is None:
                raise SessionNotFoundError(f"no context cache for session {session_id!r}")
            cache = self._live.transient(target)
        if refresh:
            cache.mark_all(profile.sources)
        stale = cache.stale(self._sources)
        need = [n for n in profile.sources if n in stale]
        results = await self._runner.run(cache, need) if need else {}
        for name in profile.sources:
            if name not in results:
                cached = cache.values[name]
                self._from_cache += 1
                results[name] = SourceResult(
                    name, cached.status, cached.value, cached.error, 0.0, cached.fetched_at, True
                )
        view = {name: self._view(profile, cache.target, results[name]) for name in profile.sources}
        ctx = Context(
            session_id, role, view, trio.current_time() - started, self._fresh_for(results)
        )
        if not transient and self._publish and need:
            self._engine.publish_nowait(
                "session.context",
                {
                    "event": "gathered",
                    "role": role,
                    "ran": sorted(need),
                    "statuses": {n: r.status.value for n, r in view.items()},
                },
                session_id=session_id,
            )
        return ctx

    def _fresh_for(self, results: Mapping[str, SourceResult]) -> float | None:
        now = time.time()
        left = [
            spec.max_age - (now - r.fetched_at)
            for r in results.values()
            if (spec := self._sources[r.name]).max_age is not None
        ]
        return max(0.0, min(left)) if left else None

    def _view(self, profile: RoleProfile, target: ContextTarget, r: SourceResult) -> SourceResult:
        value = r.value
        spec = self._sources[r.name]
        if spec.path_scoped and isinstance(value, list):
            allowed = set(target.pinned) | set(profile.files_for(target.backlog_id))
            value = [v for v in value if isinstance(v, dict) and v.get("path") in allowed]
        if r.name in profile.limits:
            value = _limit(value, profile.limits[r.name], spec.newest_last)
        if value is r.value:
            return r
        return SourceResult(r.name, r.status, value, r.error, r.elapsed, r.fetched_at, r.cached)

    def statistics(self) -> ContextStatistics:
        """A snapshot of the provider's counters."""
        return ContextStatistics(
            sessions=len(self._live),
            gathers=self._gathers,
            served_from_cache=self._from_cache,
            fetched=self._runner.fetched,
            errors=self._runner.errors,
            timeouts=self._runner.timeouts,
            invalidations=self._live.invalidations,
            refreshed=self._runner.refreshed,
        )


def get_context_sync(
    provider: ContextProvider,
    session_id: str,
    role: str = "implementer",
    *,
    trio_token: trio.lowlevel.TrioToken | None = None,
) -> Context:
    """:meth:`ContextProvider.context` for synchronous callers in another thread than the engine's.

    Blocks the calling thread until the context is gathered (usually from memory).

    Raises:
        EngineClosedError: the engine stopped before answering.
        InvalidArgumentError, SessionNotFoundError: as :meth:`ContextProvider.context`.
    """
    from .._core._errors import EngineClosedError

    token = trio_token if trio_token is not None else provider.engine.trio_token
    try:
        return trio.from_thread.run(provider.context, session_id, role, trio_token=token)
    except trio.RunFinishedError:
        raise EngineClosedError("the engine has stopped") from None
