"""The context provider: what a session's agent needs to know, gathered in parallel, kept live in memory.

For a session and a role, each *source* (branch, status, log, diff, worklog, summary, related sessions,
chosen files) runs in one nursery under its own deadline and reports ``ok``, ``error`` or ``timeout``; a
failing source never fails the whole. Results are cached per session. The watcher dirties only the
sources a change touches (:meth:`ContextProvider.invalidate` with the :class:`Aspect` values it saw), so
an unchanged tree answers from memory and a small change re-runs only what it dirtied.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, final

import trio

from .._core._errors import InvalidArgumentError, ScribeError, SessionNotFoundError
from .._scribe._rules import Aspect

if TYPE_CHECKING:
    from .._core._engine import Engine
    from ._sources import ContextTarget

__all__ = [
    "Context",
    "ContextError",
    "ContextProvider",
    "ContextSourceStatus",
    "ContextStatistics",
    "RoleProfile",
    "SourceResult",
    "SourceSpec",
    "SourceStatus",
    "get_context_sync",
]


class ContextError(ScribeError):
    """Root of the context provider's errors."""


class SourceStatus(enum.StrEnum):
    """How a context source fared."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"


#: The name :mod:`engine` exports :class:`SourceStatus` under (the rehydrator has its own).
ContextSourceStatus = SourceStatus

Fetch = Callable[["ContextTarget"], Awaitable[Any]]
Refresh = Callable[["ContextTarget", Any, frozenset[str]], Awaitable[Any]]

#: What a :attr:`SourceSpec.refresh` returns when only a full fetch can answer.
FULL: Any = object()

#: The most changed paths an incremental refresh takes; beyond, the source is fetched in full.
MAX_REFRESH_PATHS = 64


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One context source.

    Attributes:
        name: its name in a :class:`Context`.
        fetch: gathers its JSON-ready value for a session.
        depends_on: the aspects whose change dirties it.
        timeout: its deadline in seconds.
        max_age: seconds a cached value stays good without being dirtied (None: until dirtied).
        path_scoped: also dirtied when a changed work-tree path is one of the target's chosen files,
            and only then by a tree change.
        newest_last: its value is a list ordered oldest first, so a role's limit keeps the last items
            (else the first).
        refresh: brings a cached value up to date after a change of known work-tree paths only
            (``refresh(target, previous_value, paths)``), cheaper than a full fetch; it may return
            :data:`FULL` to ask for the full fetch instead.
    """

    name: str
    fetch: Fetch
    depends_on: frozenset[Aspect]
    timeout: float = 2.0
    max_age: float | None = None
    path_scoped: bool = False
    newest_last: bool = False
    refresh: Refresh | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidArgumentError(f"invalid source name {self.name!r}")
        if not isinstance(self.timeout, int | float) or not self.timeout > 0:
            raise InvalidArgumentError(f"source timeout must be positive, not {self.timeout!r}")
        if self.max_age is not None and not self.max_age > 0:
            raise InvalidArgumentError("max_age must be positive or None")
        object.__setattr__(self, "depends_on", frozenset(Aspect(a) for a in self.depends_on))


@dataclass(frozen=True, slots=True)
class RoleProfile:
    """What one role sees: which sources and how much of the long ones.

    Attributes:
        sources: the source names, in the order shown.
        limits: how many items of a list-valued source the role keeps (``{"log": 10}``).
        files: the chosen files (root-relative; ``{backlog}`` stands for the session's backlog id).
    """

    sources: tuple[str, ...]
    limits: Mapping[str, int] = field(default_factory=dict)
    files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceResult:
    """One source's answer.

    Attributes:
        name: the source.
        status: ok, error or timeout.
        value: its JSON-ready value (None unless ok).
        error: what went wrong (``Type: message``), unless ok.
        elapsed: seconds the fetch took (0 when served from memory).
        fetched_at: when the value was fetched (seconds since the epoch).
        cached: served from memory without running the source.
    """

    name: str
    status: SourceStatus
    value: Any = None
    error: str | None = None
    elapsed: float = 0.0
    fetched_at: float = 0.0
    cached: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "status": self.status.value,
            "value": self.value,
            "error": self.error,
            "elapsed": self.elapsed,
            "fetched_at": self.fetched_at,
            "cached": self.cached,
        }


@dataclass(frozen=True, slots=True)
class Context:
    """A session's context for one role.

    Attributes:
        session_id: the session.
        role: the role it was gathered for.
        sources: each source's result, in the role's order.
        elapsed: seconds the whole gather took.
    """

    session_id: str
    role: str
    sources: Mapping[str, SourceResult]
    elapsed: float

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


@final
class _Flight:
    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: SourceResult | None = None


@final
class _SessionCache:
    __slots__ = ("dirty", "flights", "gen", "pending", "target", "values")

    def __init__(self, target: ContextTarget, names: Iterable[str]) -> None:
        self.target = target
        self.values: dict[str, SourceResult] = {}
        self.dirty: set[str] = set(names)
        self.gen: dict[str, int] = {}
        self.flights: dict[str, _Flight] = {}
        # per source: work-tree paths changed since its value was fetched (None: unknown, or more
        # than paths changed, so only a full fetch will do)
        self.pending: dict[str, set[str] | None] = {}


def _format_error(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _format_error(exc.exceptions[0])
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
        roles: every role's profile (default: :data:`engine._context._sources.DEFAULT_ROLES`).
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
        from ._sources import DEFAULT_ROLES, default_sources

        self._engine = engine
        self._sources = dict(sources) if sources is not None else default_sources()
        self._roles = dict(roles) if roles is not None else dict(DEFAULT_ROLES)
        for role, profile in self._roles.items():
            unknown = [s for s in profile.sources if s not in self._sources]
            if unknown:
                raise InvalidArgumentError(f"role {role!r} names unknown sources {unknown}")
        self._publish = publish
        self._caches: dict[str, _SessionCache] = {}
        self._gathers = 0
        self._from_cache = 0
        self._fetched = 0
        self._errors = 0
        self._timeouts = 0
        self._invalidations = 0
        self._refreshed = 0

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
            for f in profile.files:
                if "{backlog}" in f:
                    if not backlog_id:
                        continue
                    f = f.replace("{backlog}", backlog_id)
                out[f] = None
        return tuple(out)

    # -- sessions --------------------------------------------------------------------------------

    def attach(self, target: ContextTarget) -> None:
        """Start caching context for ``target.session_id`` (every source starts dirty)."""
        self._caches[target.session_id] = _SessionCache(target, self._sources)

    def detach(self, session_id: str) -> None:
        """Stop caching context for the session (forget its values)."""
        self._caches.pop(session_id, None)

    def attached(self, session_id: str) -> bool:
        """Whether the session has a live cache."""
        return session_id in self._caches

    def dirty(self, session_id: str) -> frozenset[str]:
        """The sources that would run now for the session.

        Raises:
            SessionNotFoundError: the session is not attached.
        """
        cache = self._cache(session_id)
        return frozenset(cache.dirty | self._expired(cache))

    def _cache(self, session_id: str) -> _SessionCache:
        cache = self._caches.get(session_id)
        if cache is None:
            raise SessionNotFoundError(f"no context cache for session {session_id!r}")
        return cache

    def _expired(self, cache: _SessionCache) -> set[str]:
        now = time.time()
        out = set()
        for name, result in cache.values.items():
            spec = self._sources[name]
            if spec.max_age is not None and now - result.fetched_at > spec.max_age:
                out.add(name)
        return out

    def sources_touched(
        self,
        target: ContextTarget,
        aspects: Collection[Aspect],
        paths: Collection[str] | None = (),
    ) -> frozenset[str]:
        """The sources a change dirties (a decision only; nothing is changed). ``paths`` None means
        the changed paths are unknown (a rescan): every path may have changed."""
        aspect_set = frozenset(aspects)
        chosen = frozenset(target.files)
        if paths is None:
            hit_paths = Aspect.TREE in aspect_set
        else:
            hit_paths = bool(chosen.intersection(paths))
        out = set()
        for name, spec in self._sources.items():
            deps = spec.depends_on
            if spec.path_scoped:
                if hit_paths or (deps - {Aspect.TREE}) & aspect_set:
                    out.add(name)
            elif deps & aspect_set:
                out.add(name)
        return frozenset(out)

    def invalidate(
        self,
        session_id: str,
        aspects: Collection[Aspect],
        paths: Collection[str] | None = (),
    ) -> frozenset[str]:
        """Dirty the sources that depend on ``aspects`` (and a path-scoped source when one of its files
        is in ``paths``, or when ``paths`` is None: unknown); return the sources newly dirtied. An
        unknown session is ignored."""
        cache = self._caches.get(session_id)
        if cache is None:
            return frozenset()
        touched = self.sources_touched(cache.target, aspects, paths)
        newly = frozenset(touched - cache.dirty)
        only_tree = paths is not None and set(aspects) <= {Aspect.TREE}
        for name in touched:
            cache.gen[name] = cache.gen.get(name, 0) + 1
            if self._sources[name].refresh is None:
                continue
            pending = cache.pending.get(name, set())
            if only_tree and pending is not None and paths is not None:
                pending |= set(paths)
                cache.pending[name] = pending if len(pending) <= MAX_REFRESH_PATHS else None
            else:
                cache.pending[name] = None
        cache.dirty |= touched
        if newly:
            self._invalidations += len(newly)
            if self._publish:
                self._engine.publish_nowait(
                    "session.context",
                    {"event": "dirty", "sources": sorted(newly)},
                    session_id=session_id,
                )
        return newly

    def invalidate_all(self, aspects: Collection[Aspect]) -> None:
        """Dirty what ``aspects`` touch in every attached session (a registry change, say)."""
        for sid in tuple(self._caches):
            self.invalidate(sid, aspects)

    def note_entry(self, session_id: str, entry: Mapping[str, Any]) -> None:
        """Write-through: a worklog entry was stored; a cached worklog gets it without a query."""
        self._write_through(session_id, "worklog", lambda v: [*(v or []), dict(entry)][-200:])

    def note_summary(self, session_id: str, summary: Mapping[str, Any]) -> None:
        """Write-through: a summary was stored; a cached summary source gets it without a query."""
        self._write_through(session_id, "summary", lambda v: dict(summary))

    def _write_through(self, session_id: str, name: str, update: Callable[[Any], Any]) -> None:
        cache = self._caches.get(session_id)
        if cache is None or name not in self._sources:
            return
        cache.gen[name] = cache.gen.get(name, 0) + 1
        current = cache.values.get(name)
        if current is None or name in cache.dirty:
            cache.dirty.add(name)
            return
        cache.values[name] = SourceResult(
            name, SourceStatus.OK, update(current.value), fetched_at=time.time()
        )

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

        Clean cached sources answer from memory; dirty ones run in parallel in one nursery, each under
        its own deadline. Two callers asking at once share each running fetch.

        Args:
            session_id: an attached session, or any session when ``target`` is given (gathered without
                caching).
            role: planner, implementer, coder, researcher or reviewer (or a configured one).
            target: what to gather for a session that is not attached.
            refresh: run every source even if cached.

        Raises:
            InvalidArgumentError: unknown role.
            SessionNotFoundError: the session is not attached and no target is given.

        Cancellation: running fetches are cancelled; the cache keeps what it had.
        """
        profile = self.profile(role)
        started = time.perf_counter()
        self._gathers += 1
        cache = self._caches.get(session_id)
        if cache is None:
            if target is None:
                raise SessionNotFoundError(f"no context cache for session {session_id!r}")
            cache = _SessionCache(target, self._sources)
            transient = True
        else:
            transient = False
        if refresh:
            cache.dirty |= set(profile.sources)
            for name in profile.sources:
                cache.pending[name] = None
        stale = cache.dirty | self._expired(cache)
        results: dict[str, SourceResult] = {}
        need = [n for n in profile.sources if n in stale or n not in cache.values]
        if need:
            async with trio.open_nursery() as nursery:
                for name in need:
                    nursery.start_soon(self._run, cache, name, results)
        for name in profile.sources:
            r = results.get(name)
            if r is None:
                cached = cache.values[name]
                self._from_cache += 1
                r = SourceResult(
                    name, cached.status, cached.value, cached.error, 0.0, cached.fetched_at, True
                )
            results[name] = r
        view = {name: self._view(profile, cache.target, results[name]) for name in profile.sources}
        ctx = Context(session_id, role, view, time.perf_counter() - started)
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

    def _view(self, profile: RoleProfile, target: ContextTarget, r: SourceResult) -> SourceResult:
        value = r.value
        spec = self._sources[r.name]
        if spec.path_scoped and isinstance(value, list):
            allowed = set(target.pinned)
            for f in profile.files:
                if "{backlog}" in f:
                    if not target.backlog_id:
                        continue
                    f = f.replace("{backlog}", target.backlog_id)
                allowed.add(f)
            value = [v for v in value if isinstance(v, dict) and v.get("path") in allowed]
        if r.name in profile.limits:
            value = _limit(value, profile.limits[r.name], spec.newest_last)
        if value is r.value:
            return r
        return SourceResult(r.name, r.status, value, r.error, r.elapsed, r.fetched_at, r.cached)

    async def _run(self, cache: _SessionCache, name: str, out: dict[str, SourceResult]) -> None:
        while True:
            flight = cache.flights.get(name)
            if flight is None:
                break
            await flight.done.wait()
            if flight.result is not None:
                out[name] = flight.result
                return
            # The leader was cancelled: take over.
        flight = cache.flights[name] = _Flight()
        spec = self._sources[name]
        paths = cache.pending.pop(name, None) if spec.refresh is not None else None
        previous = cache.values.get(name)
        ok = False
        try:
            gen = cache.gen.get(name, 0)
            if paths and previous is not None and previous.status is SourceStatus.OK:
                result = await self._fetch(cache.target, spec, previous.value, frozenset(paths))
            else:
                result = await self._fetch(cache.target, spec)
            flight.result = result
            if result.status is SourceStatus.OK:
                ok = True
                if cache.gen.get(name, 0) == gen:
                    cache.dirty.discard(name)
                cache.values[name] = result
            out[name] = result
        finally:
            if not ok and spec.refresh is not None:
                # what this fetch was to cover is still to do (next time: in full)
                cache.pending[name] = None
            elif spec.refresh is not None:
                cache.pending.setdefault(name, set())
            del cache.flights[name]
            flight.done.set()

    async def _fetch(
        self,
        target: ContextTarget,
        spec: SourceSpec,
        previous: Any = None,
        paths: frozenset[str] | None = None,
    ) -> SourceResult:
        started = time.perf_counter()
        now = time.time()
        self._fetched += 1
        try:
            with trio.move_on_after(spec.timeout) as scope:
                value = FULL
                if paths is not None and spec.refresh is not None:
                    self._refreshed += 1
                    value = await spec.refresh(target, previous, paths)
                if value is FULL:
                    value = await spec.fetch(target)
        except Exception as exc:
            self._errors += 1
            return SourceResult(
                spec.name,
                SourceStatus.ERROR,
                error=_format_error(exc),
                elapsed=time.perf_counter() - started,
                fetched_at=now,
            )
        if scope.cancelled_caught:
            self._timeouts += 1
            return SourceResult(
                spec.name,
                SourceStatus.TIMEOUT,
                error=f"no answer within {spec.timeout:g} s",
                elapsed=time.perf_counter() - started,
                fetched_at=now,
            )
        return SourceResult(
            spec.name, SourceStatus.OK, value, elapsed=time.perf_counter() - started, fetched_at=now
        )

    def statistics(self) -> ContextStatistics:
        """A snapshot of the provider's counters."""
        return ContextStatistics(
            sessions=len(self._caches),
            gathers=self._gathers,
            served_from_cache=self._from_cache,
            fetched=self._fetched,
            errors=self._errors,
            timeouts=self._timeouts,
            invalidations=self._invalidations,
            refreshed=self._refreshed,
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
