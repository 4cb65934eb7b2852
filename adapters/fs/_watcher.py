"""A recursive file watcher on raw inotify, driven by trio; implements :class:`engine.Watcher`.

How it stays correct when the kernel does not tell everything:

- Every directory gets its watch *before* it is listed, so a file created in a new directory before
  the watch was armed is found by the listing (and one created after by an event).
- A snapshot of every tracked path (mtime, size, kind) is kept. Queue overflow (``IN_Q_OVERFLOW``)
  and a periodic reconcile scan compare a fresh walk with it and report the difference, in a batch
  flagged ``rescan``.
- When the root is deleted or moved away, everything under it is reported deleted and its parent
  is watched (or polled) until the root is back; then it is re-armed and reported created.
- ``IN_MOVED_FROM``/``IN_MOVED_TO`` pairs (same cookie) become one ``moved`` change; an unpaired
  half means the path left the tree (deleted) or entered it (created).
- In a git work tree, what git ignores gets no watch and is not reported (tracked files excepted).
  When a rule changes (a ``.gitignore``, the exclude file, the global excludes file, the index), the
  rules are read again before the next batch is returned; what they newly hide is forgotten, what they
  newly show is found by a full scan as a baseline.

The watcher is pull-driven: events are read while a consumer waits in ``__anext__``. If nobody
reads for long enough that the kernel queue overflows, the next batch is a rescan; nothing is lost.

The parts: the inotify descriptor and its watches (:mod:`._inotify`), the snapshot and what each event
changes in it (:mod:`._tree`), the batch being gathered (:mod:`._debounce`), the halves of renames
waiting for their pair (:mod:`._move_pairs`); this module holds the loop, what each event means and the
root's comings and goings; the ignore rules come from :mod:`._tree_rules`, :mod:`._gitignore` and
:mod:`._ignore_sources`; :mod:`._open_watcher` reads them and opens the watcher.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Final, final

import trio

from engine import ChangeBatch, NoPublicConstructor, Watcher, WatcherError, WatchLimitError

from ._debounce import ChangeBatcher
from ._ignore_sources import IgnoreSources
from ._inotify import FLAGS as _F
from ._inotify import InotifyWatches, join
from ._move_pairs import MovePairs
from ._tree import WatchedTree
from ._tree_rules import TreeRules
from ._watch_rules import IgnoreRules
from ._watcher_statistics import WatcherStatistics

__all__ = ["InotifyWatcher"]

_log = logging.getLogger(__name__)

_ROOT_POLL: Final = 0.25  # poll interval for a missing root whose parent cannot be watched
_SCAN_CHUNK: Final = 512  # entries between checkpoints during a full scan


@final
class InotifyWatcher(metaclass=NoPublicConstructor):
    """Watches one directory tree. Get one from :func:`open_watcher`; iterate for batches."""

    def __init__(
        self,
        root: Path,
        *,
        rules: TreeRules,
        sources: IgnoreSources | None,
        quiet: float,
        cap: float,
        reconcile_interval: float | None,
    ) -> None:
        self._root = root
        self._root_str = str(root)
        self._rules = rules.fixed
        self._sources = sources
        self._reconcile_interval = reconcile_interval
        self._watches = InotifyWatches(self._root_str)
        self._batch = ChangeBatcher(quiet, cap)
        self._closed = False
        self._busy = False
        self._tree = WatchedTree(self._root_str, rules, self._watches, self._batch)
        self._moves = MovePairs()
        self._root_wd: int | None = None
        self._parent_wd: int | None = None
        self._need_rescan = False
        self._next_reconcile = math.inf
        self._root_id: tuple[int, int] | None = None
        self._events = 0
        self._overflows = 0
        self._rescans = 0

    def __repr__(self) -> str:
        return f"<InotifyWatcher {self._root_str!r} watches={len(self._watches)}>"

    # -------------------------------------------------------------------------- public API

    @property
    def root(self) -> Path:
        """The watched directory."""
        return self._root

    @property
    def rules(self) -> IgnoreRules:
        """The ignore rules in force."""
        return self._rules

    def statistics(self) -> WatcherStatistics:
        """Counters and sizes, as a frozen snapshot."""
        return WatcherStatistics(
            watches=len(self._watches),
            tracked=len(self._tree),
            events=self._events,
            batches=self._batch.batches,
            overflows=self._overflows,
            rescans=self._rescans,
            root_present=self._root_wd is not None,
        )

    def __aiter__(self) -> AsyncIterator[ChangeBatch]:
        return self

    async def __anext__(self) -> ChangeBatch:
        """Wait for the next batch of changes.

        A batch is returned once no new change arrived for ``quiet`` seconds, or ``cap`` seconds
        after its first change, whichever comes first.

        Raises:
            StopAsyncIteration: the watcher is closed.
            WatchLimitError: a new directory could not be watched (``max_user_watches``).
            trio.BusyResourceError: another task is already waiting on this watcher.

        Cancellation: nothing is lost. Changes read so far stay queued for the next call; if a
        full scan was interrupted, the next call starts it again.
        """
        if self._closed:
            raise StopAsyncIteration
        if self._busy:
            raise trio.BusyResourceError("another task is already iterating this watcher")
        self._busy = True
        try:
            return await self._next_batch()
        finally:
            self._busy = False

    async def aclose(self) -> None:
        """Stop watching and close the inotify descriptor (idempotent).

        Cancellation: closing is synchronous; it always completes.
        """
        if not self._closed:
            self._closed = True
            self._watches.close()
        await trio.lowlevel.checkpoint()

    # --------------------------------------------------------------------------- main loop

    async def _next_batch(self) -> ChangeBatch:
        while True:
            now = trio.current_time()
            self._expire_moves(now)
            sources = self._sources
            if sources is not None and sources.stale and (not self._batch or self._batch.due(now)):
                await self._refresh_rules(sources)
                continue
            if self._need_rescan:
                await self._full_scan()
                continue
            if self._root_wd is None and self._parent_wd is None:
                self._try_rearm()
            if self._batch:
                deadline = self._batch.deadline()
                if now >= deadline:
                    return self._batch.take()
            else:
                if now >= self._next_reconcile:
                    self._need_rescan = True
                    if sources is not None:
                        sources.check_files()
                    continue
                deadline = self._next_reconcile
                if self._root_wd is None and self._parent_wd is None:
                    deadline = min(deadline, now + _ROOT_POLL)
            deadline = min(deadline, self._moves.deadline())
            with trio.move_on_at(deadline):
                try:
                    await trio.lowlevel.wait_readable(self._watches.fd)
                except trio.ClosedResourceError:
                    raise StopAsyncIteration from None
                if self._closed:
                    raise StopAsyncIteration
                try:
                    self._read_events()
                except WatchLimitError:
                    self._need_rescan = True  # events after the failure were not handled
                    raise

    async def _refresh_rules(self, sources: IgnoreSources) -> None:
        """Read the rules again; if they changed, put them in force and scan (a cancellation here
        leaves them stale, to be read again)."""
        git = self._tree.rules.git
        assert git is not None
        new = await sources.refresh(git)
        if new is not None:
            self._tree.replace_rules(self._tree.rules.with_git(new))
            self._need_rescan = True

    # ------------------------------------------------------------------------------ events

    def _read_events(self) -> None:
        events = self._watches.read_events()
        self._events += len(events)
        for event in events:
            self._handle(event.wd, event.mask, event.cookie, event.name)

    def _handle(self, wd: int, mask: int, cookie: int, name: str) -> None:
        if mask & _F.Q_OVERFLOW:
            self._overflows += 1
            if self._overflows == 1:
                _log.info("the kernel dropped file events under %s; rescanning the tree", self._root)
            self._need_rescan = True
            return
        if wd == self._parent_wd and self._watches.path_of(wd) is None:
            if mask & _F.IGNORED:
                self._parent_wd = None
            elif name == self._root.name:
                self._try_rearm()
            return
        parent = self._watches.path_of(wd)
        if parent is None:
            return  # a watch already forgotten; its last events may still be queued
        if mask & _F.IGNORED:
            self._watches.forget(wd)
            if wd == self._root_wd:
                self._root_lost()
            return
        if mask & (_F.DELETE_SELF | _F.MOVE_SELF):
            if wd == self._root_wd:
                self._root_lost()
            return
        if not name:
            return
        rel = join(parent, name)
        is_dir = bool(mask & _F.ISDIR)
        if self._sources is not None:
            self._sources.note(rel)
        if mask & _F.CREATE:
            if self._tree.rules.tracked(rel, is_dir):
                self._tree.appeared(rel)
        elif mask & _F.MOVED_FROM:
            self._moves.moved_from(cookie, rel)
        elif mask & _F.MOVED_TO:
            source = self._moves.moved_to(cookie)
            if source is None:
                if self._tree.rules.tracked(rel, is_dir):
                    self._tree.appeared(rel)
            else:
                if is_dir and self._sources is not None:
                    self._sources.reconsider()
                self._tree.moved(source, rel, is_dir)
        elif mask & _F.DELETE:
            self._tree.disappeared(rel)
        elif mask & (_F.MODIFY | _F.ATTRIB) and not is_dir:
            self._tree.modified(rel)

    def _expire_moves(self, now: float) -> None:
        for rel in self._moves.expired(now):
            self._tree.disappeared(rel)  # moved out of the tree

    # ---------------------------------------------------------------------------- scanning

    async def _full_scan(self) -> None:
        """Walk the whole tree, compare with the snapshot, report differences as a rescan."""
        self._rescans += 1
        self._moves.clear()  # an unpaired half is settled by the walk
        if self._root_wd is None or not self._root_is_armed_one():
            self._need_rescan = False
            self._root_lost()
            return
        emitted = self._batch.emitted
        seen: set[str] = set()
        stack = [""]
        budget = _SCAN_CHUNK
        while stack:
            budget -= self._tree.scan_dir(stack.pop(), seen, stack)
            if budget <= 0:
                budget = _SCAN_CHUNK
                await trio.lowlevel.checkpoint()  # a cancellation here leaves _need_rescan set
        if self._root_wd is None:
            return  # the root went away during the walk: _root_lost took over
        self._tree.missing(seen)
        self._tree.settled()
        if self._batch.emitted != emitted:
            self._batch.rescan = True
        self._need_rescan = False
        self._schedule_reconcile()

    def _schedule_reconcile(self) -> None:
        if self._reconcile_interval is not None:
            self._next_reconcile = trio.current_time() + self._reconcile_interval

    # ------------------------------------------------------------------------------- root

    def _arm_root(self) -> bool:
        """Watch the root and take the initial snapshot without reporting it."""
        st = self._tree.lstat("")
        wd = self._watches.add("")
        if wd is None or st is None:
            return False
        self._root_wd = wd
        self._root_id = (st.st_dev, st.st_ino)
        return True

    def _root_is_armed_one(self) -> bool:
        st = self._tree.lstat("")
        return st is not None and (st.st_dev, st.st_ino) == self._root_id

    def _root_lost(self) -> None:
        if self._root_wd is None and self._parent_wd is not None:
            return
        self._root_wd = None
        self._root_id = None
        self._tree.lost()
        self._moves.clear()
        self._watches.drop_all()
        self._need_rescan = False
        # None when the parent is gone too: then it is polled.
        self._parent_wd = self._watches.add_parent(str(self._root.parent))
        self._try_rearm()

    def _try_rearm(self) -> None:
        """If the root exists again, watch it and report its whole content as created."""
        if self._root_wd is not None or not os.path.isdir(self._root_str):
            return
        if not self._arm_root():
            return
        if self._parent_wd is not None:
            parent_wd, self._parent_wd = self._parent_wd, None
            self._watches.remove(parent_wd)
        self._rescans += 1
        self._batch.rescan = True
        self._tree.scan_sync("")
        self._schedule_reconcile()
        if self._sources is not None:
            self._sources.reconsider()  # the rule files may be others now

    def _initial_scan(self) -> None:
        if not self._arm_root():
            raise WatcherError(f"cannot watch {self._root_str}: not a readable directory")
        self._tree.scan_sync("")
        # The initial content is the baseline, not a change.
        self._batch.discard()
        self._schedule_reconcile()


if TYPE_CHECKING:

    def _implements_protocol(watcher: InotifyWatcher) -> Watcher:
        return watcher
