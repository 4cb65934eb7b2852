"""What the scribe answers and does about sessions, live or stored: which are captured, resolving
references, notes, tags, worklogs, summaries, contexts, recorded states, cleanup and orphan validation. :class:`~engine._scribe._scribe.Scribe` is built on it."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Awaitable, Callable, Collection, Mapping
from pathlib import Path
from typing import Any, Final

import trio
import trio.lowlevel

from .._context._provider import Context, ContextProvider
from .._context._sources import ContextTarget
from .._core._errors import (
    InvalidArgumentError,
    ScribeError,
    SessionClosedError,
    SessionNotFoundError,
)
from .._core._health import HealthCheck
from .._core._limits import (
    INT_MAX,
    LIST_MAX,
    NAME_MAX,
    NOTE_MAX,
    PATH_MAX,
    check_count,
    check_length,
)
from .._core._session_info import check_tags
from .._core._state import SessionState
from .._ports._fs import FileSystem
from .._ports._git import Git
from .._ports._session_store import (
    LIVE_STATES,
    SessionRecord,
    SessionStore,
    StoreConflictError,
    StoreNotFoundError,
)
from .._ports._summary_record import Summary
from .._ports._worklog_records import EntryKind, WorklogEntry, check_note
from .._ports._worklog_store import WorklogStore
from ._agent_sessions import agent_session
from ._capture import Capture
from ._capture_info import CaptureInfo
from ._journal_replayer import JournalReplayer
from ._rules import Aspect
from ._summary_pipeline import SummaryPipeline

__all__ = ["FsOpener", "RepoOpener", "ScribeRecords"]

#: Opens the git repository whose work tree contains a path.
RepoOpener = Callable[[Path], Awaitable[Git]]
#: Opens the filesystem scoped to a work tree's root.
FsOpener = Callable[[Path], FileSystem]

_MIN_PREFIX: Final = 4


class ScribeRecords:
    """The scribe's answers about stored sessions (live or not). Every method that names a session
    accepts its id, an agent's own session id given at its start, a unique prefix of its id (4
    characters or more), or a backlog id (the newest session of that item)."""

    registry: SessionStore
    store: WorklogStore
    pipeline: SummaryPipeline | None
    context: ContextProvider | None
    _captures: dict[str, Capture]
    replayer: JournalReplayer | None
    _open_repo: RepoOpener
    _open_fs: FsOpener

    def live(self) -> list[str]:
        """Ids of the sessions this scribe captures now."""
        return list(self._captures)

    def capture_health(self) -> HealthCheck:
        """The capture's health: degraded while entries are carried (not yet in the store) or a
        journal left by an earlier run waits to be replayed."""
        carried = sum(cap.carried for cap in self._captures.values())
        replayer = self.replayer
        waiting = 0 if replayer is None or replayer.last is None else len(replayer.last.failed)
        detail = {"carried": carried, "journals_waiting": waiting}
        if carried or waiting:
            problem = f"{carried} entries carried, {waiting} journals waiting for the store"
            return HealthCheck(ok=False, status="carrying", problem=problem, detail=detail)
        return HealthCheck(ok=True, status="ok", detail=detail)

    def capture_info(self, session_id: str) -> CaptureInfo | None:
        """A snapshot of the session's capture, or None when it is not live here."""
        cap = self._captures.get(session_id)
        return None if cap is None else cap.info()

    async def wait_stopped(self, session_id: str) -> None:
        """Return once the session is no longer captured here (at once if it is not).

        Cancellation just ends the wait.
        """
        cap = self._captures.get(session_id)
        if cap is None:
            await trio.lowlevel.checkpoint()
            return
        await cap.stopped.wait()
        while session_id in self._captures:
            await trio.lowlevel.checkpoint()

    async def resolve(self, ref: str) -> SessionRecord:
        """The stored session ``ref`` names, tried in this order: an id; an agent session id given at
        start (its newest live session, else its newest); a unique id prefix (4+ characters); a
        backlog id (its newest session, live ones first).

        Raises:
            InvalidArgumentError: ``ref`` is empty or matches several sessions.
            SessionNotFoundError: nothing matches.
        """
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidArgumentError("a session reference must be a non-empty string")
        ref = ref.strip()
        try:
            return await self.registry.get(ref)
        except StoreNotFoundError:
            pass
        if len(ref) <= NAME_MAX and ref.isprintable():
            by_agent = await agent_session(self.registry, ref)
            if by_agent is not None:
                return by_agent
        live_matches = [sid for sid in self._captures if sid.startswith(ref)]
        if len(ref) >= _MIN_PREFIX and len(live_matches) == 1:
            return self._captures[live_matches[0]].record
        by_backlog = await self.registry.query(backlog_id=ref.upper())
        if by_backlog:
            live = [r for r in by_backlog if r.state in LIVE_STATES]
            pool = live or by_backlog
            return max(pool, key=lambda r: r.created_at)
        if len(ref) >= _MIN_PREFIX:
            matches = [r for r in await self.registry.query() if r.id.startswith(ref)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise InvalidArgumentError(
                    f"{ref!r} matches {len(matches)} sessions; give more of the id"
                )
        raise SessionNotFoundError(f"no session matches {ref!r}")

    async def _set_state(self, sid: str, state: SessionState, error: str | None) -> SessionRecord:
        for _ in range(5):
            current = await self.registry.get(sid)
            if current.state is state:
                return current
            try:
                return await self.registry.set_state(
                    sid, state, expected_version=current.version, error=error
                )
            except StoreConflictError:
                continue
        raise StoreConflictError(sid, -1, -1)

    def _registry_changed(self) -> None:
        if self.context is not None:
            self.context.invalidate_all({Aspect.REGISTRY})

    def _context_target(
        self,
        session_id: str,
        git: Git | None,
        fs: FileSystem | None,
        backlog_id: str | None,
        pinned: tuple[str, ...],
    ) -> ContextTarget:
        assert self.context is not None
        return ContextTarget(
            session_id=session_id,
            git=git,
            fs=fs,
            store=self.store,
            registry=self.registry,
            backlog_id=backlog_id,
            files=tuple(dict.fromkeys((*self.context.role_files(backlog_id), *pinned))),
            pinned=pinned,
        )

    def _live(self, record: SessionRecord) -> Capture:
        cap = self._captures.get(record.id)
        if cap is None:
            raise SessionClosedError(
                f"session {record.id} is {record.state.value} and not captured by this daemon"
            )
        return cap

    async def append_note(self, ref: str, text: str) -> WorklogEntry:
        """Append a user's note to a live session's worklog; return it once durable.

        Raises:
            InvalidArgumentError: an empty or oversized note.
            SessionNotFoundError, SessionClosedError: no such live session.
        """
        note = check_note(text)
        cap = self._live(await self.resolve(ref))
        entries = await cap.add_entries([(EntryKind.NOTE, {"text": note})], carry_on_failure=False)
        return entries[-1]

    async def append_tool(self, ref: str, payload: Mapping[str, Any]) -> WorklogEntry | None:
        """Append an agent's tool call (a :attr:`~engine.EntryKind.TOOL` entry) to a live session's
        worklog; return it once durable (scrubbed, as every entry), or None while the store is
        out: then it is carried (and journaled) and written when the store is back, as the
        watcher's entries are (nobody waits on a hook to be told).

        Args:
            ref: the session.
            payload: ``tool`` (a name), ``paths`` (root-relative or absolute), ``input`` and
                ``result`` (bounded excerpts), ``ok`` (bool), ``agent``.

        Raises:
            InvalidArgumentError: a payload without a tool name, or larger than a note may be.
            SessionNotFoundError, SessionClosedError: no such live session.
            WorklogError, DatabaseError: the write failed (the entry is carried).

        Cancellation: the write is shielded (the entry is stored or not), then delivered.
        """
        tool = payload.get("tool")
        if not isinstance(tool, str) or not tool:
            raise InvalidArgumentError("a tool entry needs the tool's name")
        check_length("tool entry", json.dumps(payload, default=str), 4 * NOTE_MAX)
        cap = self._live(await self.resolve(ref))
        entries = await cap.add_entries([(EntryKind.TOOL, payload)], carry_on_failure=True)
        return entries[-1] if entries else None

    async def tag(self, ref: str, tags: Collection[str], *, remove: bool = False) -> SessionRecord:
        """Add (or remove) tags of a session, live or not.

        Raises:
            InvalidArgumentError: a bad tag, none given, or (:class:`~engine.FieldLimitError`) the
                session would have more than :data:`~engine.LIST_MAX` tags.
            SessionNotFoundError: ``ref`` names no session.

        Cancellation: the change is made or not, as the store's call.
        """
        clean = check_tags(tags)
        if not clean:
            raise InvalidArgumentError("give at least one tag")
        record = await self.resolve(ref)
        if not remove:
            check_count("tags", len(dict.fromkeys((*record.tags, *clean))), LIST_MAX)
        if remove:
            out = await self.registry.remove_tags(record.id, clean)
        else:
            out = await self.registry.add_tags(record.id, clean)
        cap = self._captures.get(record.id)
        if cap is not None:
            cap.record = out
            if remove:
                cap.session.remove_tags(*clean)
            else:
                cap.session.add_tags(*clean)
        self._registry_changed()
        return out

    async def sessions(
        self,
        *,
        states: Collection[SessionState] | None = None,
        tags: Collection[str] = (),
        repo: str | os.PathLike[str] | None = None,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[SessionRecord]:
        """Stored sessions with any of ``states`` and all of ``tags``, oldest first: at most
        ``limit`` of them (None: all), those after the session ``after`` when given.

        With ``repo`` (a directory inside a work tree, relative paths from this process's working
        directory), only the sessions of that work tree: its root is found as :meth:`start` finds
        it (the real path git reports), and that is the path sessions store.

        Raises:
            InvalidArgumentError: a bad tag, limit or path, or ``after`` names no stored session.
            NotARepositoryError: ``repo`` is not a directory inside a git work tree.

        Cancellation: nothing happens (a git process finding the work tree is killed).
        """
        root = None if repo is None else await self._work_tree_of(repo)
        try:
            return await self.registry.query(
                states=states, tags=check_tags(tags), repo_path=root, limit=limit, after=after
            )
        except StoreNotFoundError:
            raise InvalidArgumentError(
                f"no session {after!r} to list after (it was removed); list from the start"
            ) from None

    async def _work_tree_of(self, repo: str | os.PathLike[str]) -> Path:
        if not isinstance(repo, str | os.PathLike):
            raise InvalidArgumentError(f"repo must be a path, not {type(repo).__name__}")
        path = os.fspath(repo)
        if not isinstance(path, str) or not path:
            raise InvalidArgumentError("repo must be a non-empty text path")
        check_length("repo", path, PATH_MAX)
        return Path((await self._open_repo(Path(path))).root)

    async def worklog(
        self,
        ref: str,
        *,
        limit: int | None = None,
        since: int | None = None,
        before: int | None = None,
    ) -> tuple[SessionRecord, list[WorklogEntry]]:
        """A session's worklog: the entries after entry ``since`` (a seq; None: from the start)
        and before entry ``before`` (None: to the end), the last ``limit`` of them when given.
        ``before`` pages back: the smallest seq of one answer is the next answer's ``before``.

        Raises:
            InvalidArgumentError: ``since`` or ``before`` is not an int >= 0, or a bad ``limit``.
            SessionNotFoundError: ``ref`` names no session.

        Cancellation: nothing happens.
        """
        for name, value in (("since", since), ("before", before)):
            if value is not None and (type(value) is not int or not 0 <= value <= INT_MAX):
                raise InvalidArgumentError(f"{name} must be an int from 0 to {INT_MAX}, not {value!r}")
        record = await self.resolve(ref)
        entries = await self.store.entries(
            record.id, after_seq=since or 0, before_seq=before, limit=limit, newest=limit is not None
        )
        return record, entries

    async def summary(self, ref: str) -> tuple[SessionRecord, Summary | None]:
        """A session's newest summary."""
        record = await self.resolve(ref)
        latest = self.pipeline.latest(record.id) if self.pipeline is not None else None
        if latest is None:
            latest = await self.store.latest_summary(record.id)
        return record, latest

    async def context_for(self, ref: str, role: str = "implementer") -> Context:
        """A session's context for ``role`` (from the live cache when the session is live here)."""
        if self.context is None:
            raise ScribeError("this scribe has no context provider")
        self.context.profile(role)
        record = await self.resolve(ref)
        if self.context.attached(record.id):
            return await self.context.context(record.id, role)
        git = fs = None
        if record.repo_path is not None:
            try:
                git = await self._open_repo(Path(record.repo_path))
                fs = self._open_fs(Path(git.root))
            except ScribeError:
                git = fs = None
        target = self._context_target(record.id, git, fs, record.backlog_id, ())
        return await self.context.context(record.id, role, target=target)

    async def cleanup(
        self, older_than_days: float, *, states: Collection[SessionState] | None = None
    ) -> int:
        """Delete completed sessions (or sessions in ``states``, all final) older than the given days,
        with their worklogs and summaries; return how many."""
        if isinstance(older_than_days, bool) or not isinstance(older_than_days, int | float):
            raise InvalidArgumentError("days must be a number")
        if not math.isfinite(older_than_days) or older_than_days < 0:
            raise InvalidArgumentError("days must be >= 0")
        chosen = frozenset(states) if states is not None else frozenset({SessionState.COMPLETED})
        if not all(SessionState(s).is_final for s in chosen):
            raise InvalidArgumentError("cleanup removes finished sessions only")
        n = await self.registry.purge_finished(older_than_days, states=chosen)
        if n:
            self._registry_changed()
        return n

    async def validate(self) -> list[SessionRecord]:
        """Find and mark orphans: live sessions whose owning process is gone, and sessions this
        process owns as live that no capture runs for. Returns the sessions marked orphaned."""
        marked = list(await self.registry.mark_orphans())
        mine = await self.registry.query(states=LIVE_STATES, owner=self.registry.owner_id)
        for r in mine:
            if r.id not in self._captures:
                try:
                    marked.append(
                        await self.registry.set_state(
                            r.id,
                            SessionState.ORPHANED,
                            expected_version=r.version,
                            error="no capture runs for it",
                        )
                    )
                except StoreConflictError:
                    continue
        if marked:
            self._registry_changed()
        return marked
