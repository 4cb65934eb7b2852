"""The snapshot of a watched tree: what an event or a listing changes in it, reported as changes.

Every tracked path (relative to the root) has an entry (mtime, size, kind). Each directory gets its
watch *before* it is listed, so a file created in a new directory before the watch was armed is found
by the listing (and one created after by an event).

When the rules change (a ``.gitignore`` was edited, a file was tracked), what they no longer track is
forgotten without a report, its watches dropped; the next scan finds what they newly track as a
baseline, not as created.
"""

from __future__ import annotations

import os
import stat
from typing import NamedTuple, final

from engine import ChangeKind

from ._debounce import ChangeBatcher
from ._inotify import InotifyWatches, join, under
from ._tree_rules import TreeRules

__all__ = ["WatchedTree"]


class _Entry(NamedTuple):
    mtime_ns: int
    size: int
    is_dir: bool


@final
class WatchedTree:
    """The tracked paths under ``root``, the watches of its directories, and the batch changes go to."""

    def __init__(
        self, root: str, rules: TreeRules, watches: InotifyWatches, batch: ChangeBatcher
    ) -> None:
        self._root_str = root
        self._rules = rules
        self._watches = watches
        self._batch = batch
        self._snapshot: dict[str, _Entry] = {}
        self._previous: list[TreeRules] = []  # rules in force before a change not yet scanned

    def __len__(self) -> int:
        return len(self._snapshot)

    @property
    def rules(self) -> TreeRules:
        """The rules in force."""
        return self._rules

    def replace_rules(self, rules: TreeRules) -> None:
        """Put ``rules`` in force: forget, unreported, what they do not track (and drop its
        watches). What they newly track is left to the next full scan, which takes it silently."""
        self._previous.append(self._rules)
        self._rules = rules
        for rel in sorted(self._snapshot):
            entry = self._snapshot.get(rel)
            if entry is None or (
                rules.tracked(rel, entry.is_dir) and not (entry.is_dir and not rules.watch_dir(rel))
            ):
                continue
            del self._snapshot[rel]
            if entry.is_dir:
                for child in [p for p in self._snapshot if under(p, rel)]:
                    del self._snapshot[child]
                self._watches.drop(rel)

    def settled(self) -> None:
        """A full scan under the rules in force is done: new paths are changes again."""
        self._previous.clear()

    def missing(self, seen: set[str]) -> None:
        """After a full walk that saw ``seen``: report every other tracked path that is gone."""
        for rel in sorted((p for p in self._snapshot if p not in seen), reverse=True):
            if rel in self._snapshot and self.lstat(rel) is None:
                self.disappeared(rel)

    def lost(self) -> None:
        """The root is gone: report everything deleted and forget it."""
        for rel in sorted(self._snapshot, reverse=True):
            entry = self._snapshot[rel]
            if self._rules.report(rel, entry.is_dir):
                self._batch.emit(ChangeKind.DELETED, rel, entry.is_dir)
        self._snapshot.clear()
        self._rules.forget("")

    def lstat(self, rel: str) -> os.stat_result | None:
        try:
            return os.lstat(join(self._root_str, rel) if rel else self._root_str)
        except OSError:
            return None

    def observe(self, rel: str, st: os.stat_result) -> bool:
        """Record ``rel`` as present with ``st``; report what changed. Returns is_dir."""
        is_dir = stat.S_ISDIR(st.st_mode)
        entry = _Entry(st.st_mtime_ns, st.st_size, is_dir)
        old = self._snapshot.get(rel)
        self._snapshot[rel] = entry
        if old is not None and old.is_dir == is_dir:
            if is_dir or (old.mtime_ns, old.size) == (entry.mtime_ns, entry.size):
                return is_dir  # unchanged: no rule needs asking
        elif old is None and any(not p.tracked(rel, is_dir) for p in self._previous):
            return is_dir  # hidden until the rules changed: a baseline, not a creation
        if self._rules.report(rel, is_dir):
            if old is None:
                self._batch.emit(ChangeKind.CREATED, rel, is_dir)
            elif old.is_dir != is_dir:
                self._batch.emit(ChangeKind.DELETED, rel, old.is_dir)
                self._batch.emit(ChangeKind.CREATED, rel, is_dir)
            elif not is_dir and (old.mtime_ns, old.size) != (entry.mtime_ns, entry.size):
                self._batch.emit(ChangeKind.MODIFIED, rel, is_dir)
        return is_dir

    def appeared(self, rel: str) -> None:
        st = self.lstat(rel)
        if st is None:
            return  # already gone again; its deletion event is a no-op
        is_dir = stat.S_ISDIR(st.st_mode)
        if is_dir:
            self._rules.forget(rel)  # a directory that came (back): its rule files are read anew
        if not self._rules.tracked(rel, is_dir):
            return
        if rel in self._snapshot and self._snapshot[rel].is_dir and not is_dir:
            self.disappeared(rel)
        self.observe(rel, st)
        if is_dir and self._rules.watch_dir(rel):
            self.scan_sync(rel)

    def modified(self, rel: str) -> None:
        if not self._rules.report(rel, False):
            return
        st = self.lstat(rel)
        if st is None:
            return
        if rel not in self._snapshot:
            self.appeared(rel)
            return
        self._snapshot[rel] = _Entry(st.st_mtime_ns, st.st_size, stat.S_ISDIR(st.st_mode))
        self._batch.emit(ChangeKind.MODIFIED, rel, False)

    def disappeared(self, rel: str) -> None:
        entry = self._snapshot.pop(rel, None)
        if entry is None:
            return
        if entry.is_dir:
            self._rules.forget(rel)
            for child in sorted((p for p in self._snapshot if under(p, rel)), reverse=True):
                child_entry = self._snapshot.pop(child)
                if self._rules.report(child, child_entry.is_dir):
                    self._batch.emit(ChangeKind.DELETED, child, child_entry.is_dir)
            self._watches.drop(rel)
        if self._rules.report(rel, entry.is_dir):
            self._batch.emit(ChangeKind.DELETED, rel, entry.is_dir)

    def moved(self, old: str, new: str, is_dir: bool) -> None:
        entry = self._snapshot.get(old)
        if entry is None:
            self.appeared(new)
            return
        st = self.lstat(new)
        now_is_dir = entry.is_dir if st is None else stat.S_ISDIR(st.st_mode)
        if not self._rules.tracked(new, now_is_dir) or (
            now_is_dir and not self._rules.watch_dir(new)
        ):
            self.disappeared(old)
            return
        replaced = self._snapshot.get(new)
        if replaced is not None and replaced.is_dir:
            self.disappeared(new)
        # Move the entry, its subtree and the subtree's watches (inotify watches follow inodes).
        del self._snapshot[old]
        self._snapshot[new] = (
            entry if st is None else _Entry(st.st_mtime_ns, st.st_size, now_is_dir)
        )
        if entry.is_dir:
            self._rules.forget(old)
            self._rules.forget(new)
            for child in [p for p in self._snapshot if under(p, old)]:
                self._snapshot[new + child[len(old) :]] = self._snapshot.pop(child)
            self._watches.move(old, new)
        reported_old = self._rules.report(old, entry.is_dir)
        reported_new = self._rules.report(new, now_is_dir)
        if reported_old and reported_new:
            self._batch.emit(ChangeKind.MOVED, new, now_is_dir, old)
        elif reported_new:
            self._batch.emit(ChangeKind.CREATED, new, now_is_dir)
        elif reported_old:
            self._batch.emit(ChangeKind.DELETED, old, entry.is_dir)

    def scan_dir(self, rel: str, seen: set[str] | None, stack: list[str]) -> int:
        """Watch ``rel``, then list it: observe each tracked entry, queue subdirectories."""
        if self._watches.add(rel) is None:
            return 0
        path = join(self._root_str, rel) if rel else self._root_str
        count = 0
        try:
            with os.scandir(path) as it:
                for entry in it:
                    count += 1
                    child = join(rel, entry.name)
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    is_dir = stat.S_ISDIR(st.st_mode)
                    known = self._snapshot.get(child)
                    # What the snapshot holds is tracked (and watched, if a directory) under the
                    # rules in force: only the rest is judged.
                    same = known is not None and known.is_dir == is_dir
                    if not same and not self._rules.tracked(child, is_dir):
                        continue
                    if seen is not None:
                        seen.add(child)
                    if known is not None and known.is_dir and not is_dir:
                        self.disappeared(child)
                    self.observe(child, st)
                    if is_dir and (same or self._rules.watch_dir(child)):
                        stack.append(child)
        except OSError:
            pass  # removed or replaced while listing; its events tell the rest
        return count

    def scan_sync(self, rel: str) -> None:
        """Watch and list a new directory and everything below it, without yielding."""
        stack = [rel]
        while stack:
            self.scan_dir(stack.pop(), None, stack)
