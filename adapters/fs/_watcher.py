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

The watcher is pull-driven: events are read while a consumer waits in ``__anext__``. If nobody
reads for long enough that the kernel queue overflows, the next batch is a rescan; nothing is lost.
"""

from __future__ import annotations

import errno
import math
import os
import stat
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, NamedTuple, final

import inotify_simple
import trio

from engine import (
    Change,
    ChangeBatch,
    ChangeKind,
    Watcher,
    WatcherError,
    WatcherFactory,
    WatchLimitError,
)
from engine._ports._fs import StrPath

from ._watch_rules import IgnoreRules

__all__ = ["InotifyWatcher", "WatcherStatistics", "open_watcher"]

_F = inotify_simple.flags
_DIR_MASK: Final = (
    _F.CREATE
    | _F.DELETE
    | _F.MODIFY
    | _F.ATTRIB
    | _F.MOVED_FROM
    | _F.MOVED_TO
    | _F.DELETE_SELF
    | _F.MOVE_SELF
    | _F.ONLYDIR
    | _F.DONT_FOLLOW
    | _F.EXCL_UNLINK
)
_PARENT_MASK: Final = _F.CREATE | _F.MOVED_TO | _F.ONLYDIR | _F.DONT_FOLLOW
_READ_SIZE: Final = 256 * 1024
_MOVE_PAIR_WAIT: Final = 0.002  # how long an IN_MOVED_FROM waits for its IN_MOVED_TO
_ROOT_POLL: Final = 0.25  # poll interval for a missing root whose parent cannot be watched
_SCAN_CHUNK: Final = 512  # entries between checkpoints during a full scan


class _Entry(NamedTuple):
    mtime_ns: int
    size: int
    is_dir: bool


@dataclass(frozen=True, slots=True)
class WatcherStatistics:
    """A snapshot of a watcher's state.

    Attributes:
        watches: directories watched now.
        tracked: paths in the snapshot.
        events: raw inotify events read.
        batches: batches returned.
        overflows: kernel queue overflows seen.
        rescans: full scans done (overflow, reconcile, root back).
        root_present: whether the root exists and is watched.
    """

    watches: int
    tracked: int
    events: int
    batches: int
    overflows: int
    rescans: int
    root_present: bool


def _watch_limit() -> int | None:
    limits: list[int] = []
    for path in ("/proc/sys/user/max_inotify_watches", "/proc/sys/fs/inotify/max_user_watches"):
        try:
            with open(path) as f:
                limits.append(int(f.read().strip()))
        except (OSError, ValueError):
            continue
    return min(limits) if limits else None


def _real_path(root: StrPath) -> Path:
    return Path(os.path.realpath(os.fspath(root)))


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _under(rel: str, prefix: str) -> bool:
    return rel.startswith(prefix + "/")


@final
class InotifyWatcher:
    """Watches one directory tree. Get one from :func:`open_watcher`; iterate for batches."""

    def __init__(
        self,
        root: Path,
        *,
        rules: IgnoreRules,
        quiet: float,
        cap: float,
        reconcile_interval: float | None,
    ) -> None:
        self._root = root
        self._root_str = str(root)
        self._rules = rules
        self._quiet = quiet
        self._cap = cap
        self._reconcile_interval = reconcile_interval
        self._inotify = inotify_simple.INotify(nonblocking=True)
        self._fd = self._inotify.fileno()
        self._closed = False
        self._busy = False
        self._wd_path: dict[int, str] = {}
        self._path_wd: dict[str, int] = {}
        self._snapshot: dict[str, _Entry] = {}
        self._pending: list[Change] = []
        self._latest: dict[str, int] = {}  # path -> index in _pending of its latest change
        self._pending_rescan = False
        self._first = 0.0
        self._last = 0.0
        self._moves: dict[int, tuple[str, bool, float]] = {}  # cookie -> (rel, is_dir, deadline)
        self._root_wd: int | None = None
        self._parent_wd: int | None = None
        self._need_rescan = False
        self._next_reconcile = math.inf
        self._root_id: tuple[int, int] | None = None
        self._emitted = 0
        self._events = 0
        self._batches = 0
        self._overflows = 0
        self._rescans = 0

    def __repr__(self) -> str:
        return f"<InotifyWatcher {self._root_str!r} watches={len(self._wd_path)}>"

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
            watches=len(self._wd_path),
            tracked=len(self._snapshot),
            events=self._events,
            batches=self._batches,
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
            trio.lowlevel.notify_closing(self._fd)
            self._inotify.close()
        await trio.lowlevel.checkpoint()

    # --------------------------------------------------------------------------- main loop

    async def _next_batch(self) -> ChangeBatch:
        while True:
            now = trio.current_time()
            self._expire_moves(now)
            if self._need_rescan:
                await self._full_scan()
                continue
            if self._root_wd is None and self._parent_wd is None:
                self._try_rearm()
            if self._pending:
                deadline = min(self._last + self._quiet, self._first + self._cap)
                if now >= deadline:
                    return self._take_batch()
            else:
                if now >= self._next_reconcile:
                    self._need_rescan = True
                    continue
                deadline = self._next_reconcile
                if self._root_wd is None and self._parent_wd is None:
                    deadline = min(deadline, now + _ROOT_POLL)
            if self._moves:
                deadline = min(deadline, *(d for _, _, d in self._moves.values()))
            with trio.move_on_at(deadline):
                try:
                    await trio.lowlevel.wait_readable(self._fd)
                except trio.ClosedResourceError:
                    raise StopAsyncIteration from None
                if self._closed:
                    raise StopAsyncIteration
                try:
                    self._read_events()
                except WatchLimitError:
                    self._need_rescan = True  # events after the failure were not handled
                    raise

    def _take_batch(self) -> ChangeBatch:
        batch = ChangeBatch(changes=tuple(self._pending), rescan=self._pending_rescan)
        self._pending = []
        self._latest = {}
        self._pending_rescan = False
        self._batches += 1
        return batch

    def _emit(self, kind: ChangeKind, rel: str, is_dir: bool, old: str | None = None) -> None:
        if kind is ChangeKind.MODIFIED:
            index = self._latest.get(rel)
            if index is not None and self._pending[index].kind is not ChangeKind.DELETED:
                return  # already reported as created, modified or moved here in this batch
        now = trio.current_time()
        if not self._pending:
            self._first = now
        self._last = now
        self._emitted += 1
        self._latest[rel] = len(self._pending)
        self._pending.append(Change(kind=kind, path=rel, old_path=old, is_dir=is_dir))

    # ------------------------------------------------------------------------------ events

    def _read_events(self) -> None:
        data = bytearray()
        while True:
            try:
                chunk = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
            if len(chunk) < _READ_SIZE // 2:
                break
        events = inotify_simple.parse_events(bytes(data))
        self._events += len(events)
        for event in events:
            self._handle(event.wd, event.mask, event.cookie, event.name)

    def _handle(self, wd: int, mask: int, cookie: int, name: str) -> None:
        if mask & _F.Q_OVERFLOW:
            self._overflows += 1
            self._need_rescan = True
            return
        if wd == self._parent_wd and wd not in self._wd_path:
            if mask & _F.IGNORED:
                self._parent_wd = None
            elif name == self._root.name:
                self._try_rearm()
            return
        parent = self._wd_path.get(wd)
        if parent is None:
            return  # a watch already forgotten; its last events may still be queued
        if mask & _F.IGNORED:
            self._forget_watch(wd)
            if wd == self._root_wd:
                self._root_lost()
            return
        if mask & (_F.DELETE_SELF | _F.MOVE_SELF):
            if wd == self._root_wd:
                self._root_lost()
            return
        if not name:
            return
        rel = _join(parent, name)
        is_dir = bool(mask & _F.ISDIR)
        if mask & _F.CREATE:
            if self._rules.tracked(rel, is_dir):
                self._appeared(rel)
        elif mask & _F.MOVED_FROM:
            self._moves[cookie] = (rel, is_dir, trio.current_time() + _MOVE_PAIR_WAIT)
        elif mask & _F.MOVED_TO:
            source = self._moves.pop(cookie, None)
            if source is None:
                if self._rules.tracked(rel, is_dir):
                    self._appeared(rel)
            else:
                self._moved(source[0], rel, is_dir)
        elif mask & _F.DELETE:
            self._disappeared(rel)
        elif mask & (_F.MODIFY | _F.ATTRIB) and not is_dir:
            self._modified(rel)

    def _expire_moves(self, now: float) -> None:
        for cookie, (rel, _, deadline) in list(self._moves.items()):
            if deadline <= now:
                del self._moves[cookie]
                self._disappeared(rel)  # moved out of the tree

    def _lstat(self, rel: str) -> os.stat_result | None:
        try:
            return os.lstat(_join(self._root_str, rel) if rel else self._root_str)
        except OSError:
            return None

    def _observe(self, rel: str, st: os.stat_result) -> bool:
        """Record ``rel`` as present with ``st``; report what changed. Returns is_dir."""
        is_dir = stat.S_ISDIR(st.st_mode)
        entry = _Entry(st.st_mtime_ns, st.st_size, is_dir)
        old = self._snapshot.get(rel)
        self._snapshot[rel] = entry
        if self._rules.report(rel, is_dir):
            if old is None:
                self._emit(ChangeKind.CREATED, rel, is_dir)
            elif old.is_dir != is_dir:
                self._emit(ChangeKind.DELETED, rel, old.is_dir)
                self._emit(ChangeKind.CREATED, rel, is_dir)
            elif not is_dir and (old.mtime_ns, old.size) != (entry.mtime_ns, entry.size):
                self._emit(ChangeKind.MODIFIED, rel, is_dir)
        return is_dir

    def _appeared(self, rel: str) -> None:
        st = self._lstat(rel)
        if st is None:
            return  # already gone again; its deletion event is a no-op
        is_dir = stat.S_ISDIR(st.st_mode)
        if not self._rules.tracked(rel, is_dir):
            return
        if rel in self._snapshot and self._snapshot[rel].is_dir and not is_dir:
            self._disappeared(rel)
        self._observe(rel, st)
        if is_dir and self._rules.watch_dir(rel):
            self._scan_sync(rel)

    def _modified(self, rel: str) -> None:
        if not self._rules.report(rel, False):
            return
        st = self._lstat(rel)
        if st is None:
            return
        if rel not in self._snapshot:
            self._appeared(rel)
            return
        self._snapshot[rel] = _Entry(st.st_mtime_ns, st.st_size, stat.S_ISDIR(st.st_mode))
        self._emit(ChangeKind.MODIFIED, rel, False)

    def _disappeared(self, rel: str) -> None:
        entry = self._snapshot.pop(rel, None)
        if entry is None:
            return
        if entry.is_dir:
            for child in sorted((p for p in self._snapshot if _under(p, rel)), reverse=True):
                child_entry = self._snapshot.pop(child)
                if self._rules.report(child, child_entry.is_dir):
                    self._emit(ChangeKind.DELETED, child, child_entry.is_dir)
            self._drop_watches(rel)
        if self._rules.report(rel, entry.is_dir):
            self._emit(ChangeKind.DELETED, rel, entry.is_dir)

    def _moved(self, old: str, new: str, is_dir: bool) -> None:
        entry = self._snapshot.get(old)
        if entry is None:
            self._appeared(new)
            return
        st = self._lstat(new)
        now_is_dir = entry.is_dir if st is None else stat.S_ISDIR(st.st_mode)
        if not self._rules.tracked(new, now_is_dir) or (
            now_is_dir and not self._rules.watch_dir(new)
        ):
            self._disappeared(old)
            return
        replaced = self._snapshot.get(new)
        if replaced is not None and replaced.is_dir:
            self._disappeared(new)
        # Move the entry, its subtree and the subtree's watches (inotify watches follow inodes).
        del self._snapshot[old]
        self._snapshot[new] = (
            entry if st is None else _Entry(st.st_mtime_ns, st.st_size, now_is_dir)
        )
        if entry.is_dir:
            for child in [p for p in self._snapshot if _under(p, old)]:
                self._snapshot[new + child[len(old) :]] = self._snapshot.pop(child)
            for path in [p for p in self._path_wd if p == old or _under(p, old)]:
                wd = self._path_wd.pop(path)
                moved_to = new + path[len(old) :]
                self._path_wd[moved_to] = wd
                self._wd_path[wd] = moved_to
        reported_old = self._rules.report(old, entry.is_dir)
        reported_new = self._rules.report(new, now_is_dir)
        if reported_old and reported_new:
            self._emit(ChangeKind.MOVED, new, now_is_dir, old)
        elif reported_new:
            self._emit(ChangeKind.CREATED, new, now_is_dir)
        elif reported_old:
            self._emit(ChangeKind.DELETED, old, entry.is_dir)

    # ------------------------------------------------------------------------------ watches

    def _add_watch(self, rel: str, mask: int = _DIR_MASK) -> int | None:
        path = _join(self._root_str, rel) if rel else self._root_str
        try:
            wd: int = self._inotify.add_watch(path, mask)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise WatchLimitError(Path(path), _watch_limit()) from None
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.ELOOP):
                return None  # vanished, replaced by a file, or unreadable: nothing to watch
            raise WatcherError(f"cannot watch {path}: {exc}") from exc
        previous = self._wd_path.get(wd)
        if previous is not None and previous != rel:
            self._path_wd.pop(previous, None)
        stale = self._path_wd.get(rel)
        if stale is not None and stale != wd:
            self._wd_path.pop(stale, None)
        self._wd_path[wd] = rel
        self._path_wd[rel] = wd
        return wd

    def _forget_watch(self, wd: int) -> None:
        rel = self._wd_path.pop(wd, None)
        if rel is not None and self._path_wd.get(rel) == wd:
            del self._path_wd[rel]

    def _drop_watches(self, rel: str) -> None:
        for path in [p for p in self._path_wd if p == rel or _under(p, rel)]:
            wd = self._path_wd.pop(path)
            self._wd_path.pop(wd, None)
            try:
                self._inotify.rm_watch(wd)
            except OSError:
                pass  # the kernel already removed it (directory deleted)

    # ---------------------------------------------------------------------------- scanning

    def _scan_dir(self, rel: str, seen: set[str] | None, stack: list[str]) -> int:
        """Watch ``rel``, then list it: observe each tracked entry, queue subdirectories."""
        if self._add_watch(rel) is None:
            return 0
        path = _join(self._root_str, rel) if rel else self._root_str
        count = 0
        try:
            with os.scandir(path) as it:
                for entry in it:
                    count += 1
                    child = _join(rel, entry.name)
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    is_dir = stat.S_ISDIR(st.st_mode)
                    if not self._rules.tracked(child, is_dir):
                        continue
                    if seen is not None:
                        seen.add(child)
                    if child in self._snapshot and self._snapshot[child].is_dir and not is_dir:
                        self._disappeared(child)
                    self._observe(child, st)
                    if is_dir and self._rules.watch_dir(child):
                        stack.append(child)
        except OSError:
            pass  # removed or replaced while listing; its events tell the rest
        return count

    def _scan_sync(self, rel: str) -> None:
        """Watch and list a new directory and everything below it, without yielding."""
        stack = [rel]
        while stack:
            self._scan_dir(stack.pop(), None, stack)

    async def _full_scan(self) -> None:
        """Walk the whole tree, compare with the snapshot, report differences as a rescan."""
        self._rescans += 1
        self._moves.clear()  # an unpaired half is settled by the walk
        if self._root_wd is None or not self._root_is_armed_one():
            self._need_rescan = False
            self._root_lost()
            return
        emitted = self._emitted
        seen: set[str] = set()
        stack = [""]
        budget = _SCAN_CHUNK
        while stack:
            budget -= self._scan_dir(stack.pop(), seen, stack)
            if budget <= 0:
                budget = _SCAN_CHUNK
                await trio.lowlevel.checkpoint()  # a cancellation here leaves _need_rescan set
        if self._root_wd is None:
            return  # the root went away during the walk: _root_lost took over
        for rel in sorted((p for p in self._snapshot if p not in seen), reverse=True):
            if rel in self._snapshot and self._lstat(rel) is None:
                self._disappeared(rel)
        if self._emitted != emitted:
            self._pending_rescan = True
        self._need_rescan = False
        self._schedule_reconcile()

    def _schedule_reconcile(self) -> None:
        if self._reconcile_interval is not None:
            self._next_reconcile = trio.current_time() + self._reconcile_interval

    # ------------------------------------------------------------------------------- root

    def _arm_root(self) -> bool:
        """Watch the root and take the initial snapshot without reporting it."""
        st = self._lstat("")
        wd = self._add_watch("")
        if wd is None or st is None:
            return False
        self._root_wd = wd
        self._root_id = (st.st_dev, st.st_ino)
        return True

    def _root_is_armed_one(self) -> bool:
        st = self._lstat("")
        return st is not None and (st.st_dev, st.st_ino) == self._root_id

    def _root_lost(self) -> None:
        if self._root_wd is None and self._parent_wd is not None:
            return
        self._root_wd = None
        self._root_id = None
        for rel in sorted(self._snapshot, reverse=True):
            entry = self._snapshot[rel]
            if self._rules.report(rel, entry.is_dir):
                self._emit(ChangeKind.DELETED, rel, entry.is_dir)
        self._snapshot.clear()
        self._moves.clear()
        for wd in list(self._wd_path):
            try:
                self._inotify.rm_watch(wd)
            except OSError:
                pass
        self._wd_path.clear()
        self._path_wd.clear()
        self._need_rescan = False
        try:
            self._parent_wd = self._inotify.add_watch(str(self._root.parent), _PARENT_MASK)
        except OSError:
            self._parent_wd = None  # the parent is gone too: poll
        self._try_rearm()

    def _try_rearm(self) -> None:
        """If the root exists again, watch it and report its whole content as created."""
        if self._root_wd is not None or not os.path.isdir(self._root_str):
            return
        if not self._arm_root():
            return
        if self._parent_wd is not None:
            parent_wd, self._parent_wd = self._parent_wd, None
            try:
                self._inotify.rm_watch(parent_wd)
            except OSError:
                pass
        self._rescans += 1
        self._pending_rescan = True
        self._scan_sync("")
        self._schedule_reconcile()

    def _initial_scan(self) -> None:
        if not self._arm_root():
            raise WatcherError(f"cannot watch {self._root_str}: not a readable directory")
        self._scan_sync("")
        # The initial content is the baseline, not a change.
        self._pending.clear()
        self._latest.clear()
        self._pending_rescan = False
        self._schedule_reconcile()


@asynccontextmanager
async def open_watcher(
    root: StrPath,
    *,
    ignore: Iterable[str] = (),
    ignore_defaults: bool = True,
    quiet: float = 0.005,
    cap: float = 0.05,
    reconcile_interval: float | None = 30.0,
) -> AsyncIterator[InotifyWatcher]:
    """Watch the directory tree at ``root``; iterate the watcher for :class:`engine.ChangeBatch`.

    Args:
        root: an existing directory.
        ignore: extra ``fnmatch`` globs to ignore (see :class:`IgnoreRules`).
        ignore_defaults: also ignore ``node_modules``, ``__pycache__``, the file system's
            temporary files and ``.git`` internals (except HEAD, ORIG_HEAD, packed-refs, the index
            and the refs under ``refs/heads`` and ``refs/remotes``).
        quiet: a batch is returned after this many seconds without a new change ...
        cap: ... or this many seconds after its first change, whichever is sooner.
        reconcile_interval: seconds between reconcile scans that catch what the kernel did not
            report (``None``: never).

    Yields:
        The watcher. Changes made after the context is entered are reported.

    Raises:
        WatcherError: ``root`` is not a directory that can be watched.
        WatchLimitError: the tree needs more watches than ``max_user_watches`` allows.

    Cancellation: the initial scan is synchronous; on exit the descriptor is closed.
    """
    if quiet < 0 or cap < 0:
        raise ValueError("quiet and cap must be >= 0")
    if reconcile_interval is not None and reconcile_interval <= 0:
        raise ValueError("reconcile_interval must be > 0 or None")
    real = _real_path(root)
    rules = IgnoreRules.with_extra(ignore, defaults=ignore_defaults)
    watcher = InotifyWatcher(
        real, rules=rules, quiet=quiet, cap=cap, reconcile_interval=reconcile_interval
    )
    try:
        watcher._initial_scan()
        await trio.lowlevel.checkpoint()
        yield watcher
    finally:
        with trio.CancelScope(shield=True):
            await watcher.aclose()


if TYPE_CHECKING:

    def _implements_protocol(watcher: InotifyWatcher) -> Watcher:
        return watcher

    _factory: WatcherFactory = open_watcher
