"""The context's live cache: each attached session's source values, which of them are dirty, and the
fetches running for them.

A value stays good until a change dirties it (:meth:`LiveCache.invalidate` with the aspects and paths
the watcher saw) or, for a source with a ``max_age``, until it is that old. A fetch that fails leaves the
previous value in place and its source still to run. One fetch per session and source runs at a time:
a second caller follows the running one (:meth:`SessionCache.follow`) and gets its answer; when that
leader is cancelled, a follower takes over. A change while a fetch runs keeps the source dirty (the
answer may be stale). Decisions only: the caller does the fetching (:mod:`engine._context._provider`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, final

import trio

from .._core._gather import SourceStatus
from .._scribe._rules import Aspect
from ._spec import MAX_REFRESH_PATHS, SourceResult, SourceSpec

if TYPE_CHECKING:
    from ._sources import ContextTarget

__all__ = ["LedFetch", "LiveCache", "SessionCache"]


@final
class _Flight:
    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: SourceResult | None = None


@final
class LedFetch:
    """One source's fetch led by one caller: what it starts from, and where its answer goes.

    Attributes:
        spec: the source.
        previous: the cached value to refresh (None: fetch in full).
        paths: the work-tree paths changed since ``previous`` (None: fetch in full).
        fetched_at: when the fetch started (seconds since the epoch).
    """

    __slots__ = ("_flight", "_gen", "fetched_at", "paths", "previous", "spec")

    def __init__(
        self,
        spec: SourceSpec,
        previous: Any,
        paths: frozenset[str] | None,
        gen: int,
        flight: _Flight,
    ) -> None:
        self.spec = spec
        self.previous = previous
        self.paths = paths
        self.fetched_at = time.time()
        self._gen = gen
        self._flight = flight


@final
class SessionCache:
    """One session's values, dirty sources, pending refresh paths and running fetches."""

    __slots__ = ("dirty", "flights", "gen", "pending", "target", "values")

    def __init__(self, target: ContextTarget, names: Iterable[str]) -> None:
        self.target = target
        self.values: dict[str, SourceResult] = {}
        self.dirty: set[str] = set(names)
        self.gen: dict[str, int] = {}
        self.flights: dict[str, _Flight] = {}
        # per source: work-tree paths changed since its value was fetched (None: unknown, or more
        # than MAX_REFRESH_PATHS changed, so only a full fetch will do)
        self.pending: dict[str, set[str] | None] = {}

    def expired(self, sources: Mapping[str, SourceSpec]) -> set[str]:
        """The sources whose cached value is older than their ``max_age``."""
        now = time.time()
        out = set()
        for name, result in self.values.items():
            spec = sources[name]
            if spec.max_age is not None and now - result.fetched_at > spec.max_age:
                out.add(name)
        return out

    def stale(self, sources: Mapping[str, SourceSpec]) -> set[str]:
        """The sources that must run now: dirty, expired, or never fetched."""
        return self.dirty | self.expired(sources) | (set(sources) - set(self.values))

    def mark_all(self, names: Iterable[str]) -> None:
        """Dirty ``names`` so they run in full (a forced refresh)."""
        for name in names:
            self.dirty.add(name)
            self.pending[name] = None

    def follow(self, name: str) -> Callable[[], Any] | None:
        """The wait for a running fetch of ``name`` (None: none runs, lead one with :meth:`lead`).

        The wait returns the leader's result, or None when the leader was cancelled.
        """
        flight = self.flights.get(name)
        if flight is None:
            return None

        async def wait() -> SourceResult | None:
            await flight.done.wait()
            return flight.result

        return wait

    def lead(self, spec: SourceSpec) -> LedFetch:
        """Start leading the fetch of ``spec`` (no fetch of it runs). End it with :meth:`finish`."""
        name = spec.name
        flight = self.flights[name] = _Flight()
        paths = self.pending.pop(name, None) if spec.refresh is not None else None
        previous = self.values.get(name)
        gen = self.gen.get(name, 0)
        if paths and previous is not None and previous.status is SourceStatus.OK:
            return LedFetch(spec, previous.value, frozenset(paths), gen, flight)
        return LedFetch(spec, None, None, gen, flight)

    def finish(self, fetch: LedFetch, result: SourceResult | None) -> None:
        """End a fetch this caller led with its result (None: it was cancelled); wake its followers.

        An ok result is cached, and cleans the source unless a change came while it ran.
        """
        name = fetch.spec.name
        ok = result is not None and result.status is SourceStatus.OK
        fetch._flight.result = result
        if result is not None and ok:
            if self.gen.get(name, 0) == fetch._gen:
                self.dirty.discard(name)
            self.values[name] = result
        if fetch.spec.refresh is not None:
            if ok:
                self.pending.setdefault(name, set())
            else:
                # what this fetch was to cover is still to do (next time: in full)
                self.pending[name] = None
        del self.flights[name]
        fetch._flight.done.set()


@final
class LiveCache:
    """Every attached session's :class:`SessionCache`, and the dirtying rules of the sources."""

    __slots__ = ("_sessions", "_sources", "invalidations")

    def __init__(self, sources: Mapping[str, SourceSpec]) -> None:
        self._sources = sources
        self._sessions: dict[str, SessionCache] = {}
        #: sources dirtied by changes (counted once until they run again)
        self.invalidations = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def attach(self, target: ContextTarget) -> None:
        """Start caching for ``target.session_id``, every source dirty."""
        self._sessions[target.session_id] = SessionCache(target, self._sources)

    def transient(self, target: ContextTarget) -> SessionCache:
        """A cache for one gather of a session that is not attached (kept nowhere)."""
        return SessionCache(target, self._sources)

    def detach(self, session_id: str) -> None:
        """Forget the session's values."""
        self._sessions.pop(session_id, None)

    def get(self, session_id: str) -> SessionCache | None:
        """The session's cache, if attached."""
        return self._sessions.get(session_id)

    def session_ids(self) -> tuple[str, ...]:
        """The attached sessions."""
        return tuple(self._sessions)

    def sources_touched(
        self,
        target: ContextTarget,
        aspects: Collection[Aspect],
        paths: Collection[str] | None = (),
    ) -> frozenset[str]:
        """The sources a change dirties (``paths`` None: unknown, every path may have changed)."""
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
        """Dirty what a change touches in one session; return the sources newly dirtied.

        A tree change of known paths is remembered per refreshable source (up to
        :data:`~engine._context._spec.MAX_REFRESH_PATHS`), so its next fetch refreshes only those.
        """
        cache = self._sessions.get(session_id)
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
        self.invalidations += len(newly)
        return newly

    def write_through(self, session_id: str, name: str, update: Callable[[Any], Any]) -> None:
        """Update a clean cached value in place (a record was stored); a dirty one just stays dirty."""
        cache = self._sessions.get(session_id)
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
