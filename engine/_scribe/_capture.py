"""One session's capture: its watcher turned into durable worklog entries, its idle timer and mirror.

A :class:`Capture` belongs to a :class:`~engine._scribe._scribe.Scribe`, which starts and stops it.
Its :class:`~engine._scribe._entry_writer.EntryWriter` numbers entries and stores them in order; an
entry is published (``session.worklog``), handed to the context cache and to the summary pipeline only
once the store has committed it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, final

import trio

from .._context._provider import ContextProvider
from .._core._construction import NoPublicConstructor
from .._core._errors import ScribeError
from .._core._log_throttle import LogThrottle
from .._core._privacy import Privacy
from .._core._session import Session
from .._ports._entry_journal import EntryJournal
from .._ports._fs import ChangeBatch, FileSystem, Watcher
from .._ports._git import Git
from .._ports._session_store import SessionRecord
from .._ports._worklog_records import EndReason, EntryKind, WorklogEntry
from .._ports._worklog_store import WorklogStore
from ._capture_info import CaptureInfo
from ._entry_writer import DEFAULT_MAX_BACKLOG, EntryWriter
from ._mirror import write_mirror
from ._repo_probe import probe_repo
from ._rules import Aspect, EndRules, RepoState, read_batch
from ._summary_pipeline import SummaryPipeline
from ._worklog_filter import PathFilter

if TYPE_CHECKING:
    from .._core._engine import Engine

__all__ = ["Capture"]

_THROTTLE: Final = LogThrottle(logging.getLogger(__name__))  # a session's first failure, recovery

_RETRY_INITIAL: Final = 0.1
_RETRY_MAX: Final = 2.0

_ACTIVITY: Final = frozenset(
    {
        EntryKind.FILES,
        EntryKind.COMMIT,
        EntryKind.NOTE,
        EntryKind.TOOL,
        EntryKind.BRANCH_SWITCH,
        EntryKind.PUSH,
    }
)


async def run_until_stop(session: Session, fn: Callable[[], Awaitable[None]]) -> None:
    """Run ``fn()`` until it returns or the session is asked to stop (then cancel it and return)."""
    async with trio.open_nursery() as nursery:

        async def stopper() -> None:
            await session.wait_stop_requested()
            nursery.cancel_scope.cancel()

        nursery.start_soon(stopper)
        await fn()
        nursery.cancel_scope.cancel()


WatchOpener = Callable[..., AbstractAsyncContextManager[Watcher]]


@final
class Capture(metaclass=NoPublicConstructor):
    """The scribe's work for one session. Made by the scribe; not for direct use."""

    def __init__(
        self,
        *,
        engine: Engine,
        record: SessionRecord,
        session: Session,
        repo: Git,
        fs: FileSystem,
        state: RepoState,
        store: WorklogStore,
        open_watcher: WatchOpener,
        watcher_options: Mapping[str, Any],
        path_filter: PathFilter,
        rules: EndRules,
        mirror: str | None,
        mirror_delay: float,
        max_commits: int,
        pipeline: SummaryPipeline | None,
        context: ContextProvider | None,
        on_end: Callable[[str, EndReason, str | None], None],
        first_seq: int = 0,
        journal: EntryJournal | None = None,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        privacy: Privacy | None = None,
    ) -> None:
        self.engine = engine
        self._privacy = Privacy() if privacy is None else privacy
        self.record = record
        self.session = session
        self.repo = repo
        self.fs = fs
        self.state = state
        self._open_watcher = open_watcher
        self._watcher_options = dict(watcher_options)
        self._filter = path_filter
        self._rules = rules
        self._mirror = mirror
        self._mirror_delay = mirror_delay
        self._max_commits = max_commits
        self._pipeline = pipeline
        self._context = context
        self._on_end = on_end
        self._writer = EntryWriter(
            record.id,
            store,
            self._acknowledge,
            first_seq,
            journal=journal,
            max_backlog=max_backlog,
        )
        self._entries: list[WorklogEntry] = []
        self._mirror_wanted = trio.Event()
        self.last_activity = trio.current_time()
        self.stopping = False
        self.stopped = trio.Event()
        self.armed = trio.Event()
        self._carry_wanted = trio.Event()
        self.write_errors = 0
        self._batches = 0
        root = Path(repo.root)
        try:
            rel = Path(repo.git_dir).relative_to(root)
            self._git_prefix: str | None = rel.as_posix()
        except ValueError:
            self._git_prefix = None
        own = []
        if mirror is not None:
            own.append(mirror)
        self._own_paths = frozenset(own)

    @property
    def session_id(self) -> str:
        """The session's id."""
        return self.record.id

    @property
    def mirror(self) -> str | None:
        """The mirror file, root-relative."""
        return self._mirror

    def info(self) -> CaptureInfo:
        """A snapshot of the capture."""
        s = self.state
        return CaptureInfo(
            session_id=self.session_id,
            root=str(self.repo.root),
            branch=s.branch,
            head=s.head,
            upstream=s.upstream,
            ahead=s.ahead,
            behind=s.behind,
            clean=s.clean,
            entries=self._writer.seq,
            carried=self._writer.carried,
            journaled=self._writer.journaled,
            write_errors=self.write_errors,
            journal_errors=self._writer.journal_errors,
            idle_for=max(0.0, trio.current_time() - self.last_activity),
            batches=self._batches,
            mirror=self._mirror,
        )

    # -- recording -------------------------------------------------------------------------------

    async def add_entries(
        self, items: Sequence[tuple[EntryKind, Mapping[str, Any]]], *, carry_on_failure: bool
    ) -> list[WorklogEntry]:
        """Store ``items`` as the next entries (after any carried over from a failed write) and return
        them once durable.

        Each payload is scrubbed first (the capture's :class:`~engine.Privacy`), so neither the
        store, the journal, the feed, the context cache nor the mirror sees ``<private>`` text or
        a likely secret.

        Args:
            items: ``(kind, payload)`` pairs.
            carry_on_failure: when the write fails, keep them to be written with the next call (the
                watcher's entries); else drop them and raise (a user's note: the user is told).

        Raises:
            SessionClosedError: the session was stopped (its stop entry is written).
            WorklogError, DatabaseError: the write failed.

        Cancellation: the write itself is shielded (bounded by 30 s), so an entry is either stored and
        acknowledged or not stored; cancellation is delivered after.
        """
        scrub = self._privacy.scrub_value
        safe = [(kind, scrub(dict(payload))) for kind, payload in items]
        try:
            return await self._writer.add(safe, carry_on_failure=carry_on_failure)
        finally:
            if self._writer.carried:
                self._carry_wanted.set()

    @property
    def carried(self) -> int:
        """Entries made but not yet stored."""
        return self._writer.carried

    def _acknowledge(self, entries: list[WorklogEntry]) -> None:
        sid = self.session_id
        active = False
        for e in entries:
            data = e.as_dict()
            self.engine.publish_nowait("session.worklog", data, session_id=sid)
            if self._context is not None:
                self._context.note_entry(sid, data)
            if e.kind in _ACTIVITY:
                active = True
        if self._mirror is not None:
            self._entries.extend(entries)
            self._mirror_wanted.set()
        if active:
            self.last_activity = trio.current_time()
            self.session.touch()
        if self._pipeline is not None:
            self._pipeline.request_nowait(sid)

    # -- observing -------------------------------------------------------------------------------

    async def handle_batch(self, batch: ChangeBatch) -> EndReason | None:
        """Turn one change batch into entries; return the end rule it triggered, if any."""
        self._batches += 1
        reading = read_batch(
            batch, self._filter, git_prefix=self._git_prefix, ignore=self._own_paths
        )
        if self._context is not None and reading.aspects:
            paths = None if batch.rescan else reading.tree_paths
            self._context.invalidate(self.session_id, reading.aspects, paths)
        items: list[tuple[EntryKind, Mapping[str, Any]]] = []
        if reading.files:
            items.append((EntryKind.FILES, reading.files.as_payload()))
        end: EndReason | None = None
        probe = bool(reading.aspects & {Aspect.HEAD, Aspect.UPSTREAM}) or (
            self._git_prefix is None and Aspect.TREE in reading.aspects
        )
        if probe:
            more, end, touched = await self.probe()
            items.extend(more)
            if self._context is not None and touched:
                self._context.invalidate(self.session_id, touched)
        if items:
            await self.add_entries(items, carry_on_failure=True)
        return end

    async def probe(
        self,
    ) -> tuple[list[tuple[EntryKind, Mapping[str, Any]]], EndReason | None, frozenset[Aspect]]:
        """Read the repository's state and compare it with the last one (see :func:`probe_repo`).
        Returns the entries to make, the end rule triggered, and the aspects found changed."""
        found = await probe_repo(self.repo, self.state, self._rules, self._max_commits)
        self.state = found.state
        return found.items, found.end, found.touched

    # -- tasks -----------------------------------------------------------------------------------

    async def watch(self) -> None:
        """The watcher service: runs until the session is asked to stop; restarted by the session's
        supervisor when it fails. Each (re)start first catches up with what changed while no watcher
        ran (HEAD moves)."""
        await run_until_stop(self.session, self._watch)

    async def _watch(self) -> None:
        ignore = tuple(f"{Path(p).parent.as_posix()}/" for p in self._own_paths if "/" in p)
        async with self._open_watcher(
            self.repo.root, ignore=ignore, **self._watcher_options
        ) as watcher:
            self.armed.set()
            more, end, touched = await self.probe()
            if more:
                await self.add_entries(more, carry_on_failure=True)
            if self._context is not None and touched:
                self._context.invalidate(self.session_id, touched)
            if end is not None:
                self._on_end(self.session_id, end, None)
                return
            async for batch in watcher:
                try:
                    end = await self.handle_batch(batch)
                except ScribeError as exc:
                    # The store refused (or git failed): what was observed is carried and written by
                    # the flusher; the watcher keeps watching, so no change is missed meanwhile.
                    self._failed(exc)
                    continue
                if end is not None:
                    self._on_end(self.session_id, end, None)
                    return

    def _failed(self, exc: BaseException) -> None:
        self.write_errors += 1
        why, sid = f"{type(exc).__name__}: {exc}", self.session_id
        _THROTTLE.failed(sid, "worklog of %s not written (entries carried): %s", sid, why)
        self.engine.publish_nowait(
            "scribe.error",
            {"error": f"{type(exc).__name__}: {exc}", "carried": self._writer.carried},
            session_id=self.session_id,
        )
        self._carry_wanted.set()

    async def flusher(self) -> None:
        """Write the entries carried after a failed write, a chunk at a time, retrying with bounded
        backoff (0.1 s doubling to 2 s) until the store takes them."""

        async def body() -> None:
            delay = _RETRY_INITIAL
            while True:
                await self._carry_wanted.wait()
                await trio.sleep(delay)
                try:
                    left = await self._writer.flush()
                except ScribeError as exc:
                    self._failed(exc)
                    delay = min(delay * 2, _RETRY_MAX)
                    continue
                if left:
                    delay = 0.0  # the store is back: keep going
                else:
                    _THROTTLE.recovered(self.session_id, "worklog of %s written", self.session_id)
                    self._carry_wanted = trio.Event()
                    delay = _RETRY_INITIAL

        await run_until_stop(self.session, body)

    async def idle(self, timeout: float) -> None:
        """End the session after ``timeout`` seconds without activity (trio's clock)."""

        async def body() -> None:
            while True:
                deadline = self.last_activity + timeout
                if trio.current_time() >= deadline:
                    self._on_end(self.session_id, EndReason.IDLE_TIMEOUT, f"{timeout:g} s idle")
                    return
                await trio.sleep_until(deadline)

        await run_until_stop(self.session, body)

    async def mirror_loop(self) -> None:
        """Keep the mirror file up to date (coalescing writes); the last write happens at stop."""

        async def body() -> None:
            while True:
                await self._mirror_wanted.wait()
                await trio.sleep(self._mirror_delay)
                self._mirror_wanted = trio.Event()
                await self.write_mirror()

        await run_until_stop(self.session, body)

    async def write_mirror(self) -> None:
        """Write the worklog's markdown to the mirror file atomically (old or new, never torn)."""
        if self._mirror is None:
            return
        summary = self._pipeline.latest(self.session_id) if self._pipeline is not None else None
        await write_mirror(
            self.fs, self._mirror, self._entries, self.record, self.state.branch, summary
        )

    async def close_entries(self, reason: EndReason, detail: str | None) -> WorklogEntry | None:
        """Write the stop entry (after anything still carried) and refuse entries after it."""
        return await self._writer.close(reason, detail)
