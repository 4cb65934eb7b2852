"""The inotify descriptor of a watcher: its watches, both ways (descriptor to path, path to descriptor).

Paths are relative to the watched root (``""`` is the root itself). inotify watches follow inodes, so a
directory moved inside the tree keeps its watches: :meth:`InotifyWatches.move` renames them.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Final, final

import inotify_simple
import trio

from engine import WatcherError, WatchLimitError

__all__ = ["FLAGS", "InotifyWatches"]

#: inotify's event flags.
FLAGS: Final = inotify_simple.flags
_F = FLAGS
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


def _watch_limit() -> int | None:
    limits: list[int] = []
    for path in ("/proc/sys/user/max_inotify_watches", "/proc/sys/fs/inotify/max_user_watches"):
        try:
            with open(path) as f:
                limits.append(int(f.read().strip()))
        except (OSError, ValueError):
            continue
    return min(limits) if limits else None


def join(parent: str, name: str) -> str:
    """``name`` under the relative path ``parent`` (``""``: the root)."""
    return f"{parent}/{name}" if parent else name


def under(rel: str, prefix: str) -> bool:
    """Whether the relative path ``rel`` lies strictly below ``prefix``."""
    return rel.startswith(prefix + "/")


@final
class InotifyWatches:
    """One non-blocking inotify descriptor and the directories it watches under ``root``."""

    def __init__(self, root: str) -> None:
        self._root = root
        self._inotify = inotify_simple.INotify(nonblocking=True)
        self.fd = self._inotify.fileno()
        self._wd_path: dict[int, str] = {}
        self._path_wd: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._wd_path)

    def path_of(self, wd: int) -> str | None:
        """The relative path watch ``wd`` stands for, or None when it is not (or no longer) known."""
        return self._wd_path.get(wd)

    def add(self, rel: str) -> int | None:
        """Watch the directory ``rel`` (again); None when there is nothing to watch there.

        Raises:
            WatchLimitError: ``max_user_watches`` is reached.
            WatcherError: inotify refused for another reason.
        """
        path = join(self._root, rel) if rel else self._root
        try:
            wd: int = self._inotify.add_watch(path, _DIR_MASK)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise WatchLimitError(Path(path), _watch_limit()) from exc
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

    def add_parent(self, path: str) -> int | None:
        """Watch ``path`` (the root's parent) for the root coming back; None when it cannot be."""
        try:
            wd: int = self._inotify.add_watch(path, _PARENT_MASK)
        except OSError:
            return None
        return wd

    def remove(self, wd: int) -> None:
        """Stop watch ``wd`` (one the kernel already removed is fine)."""
        try:
            self._inotify.rm_watch(wd)
        except OSError:
            pass  # the kernel already removed it (directory deleted)

    def forget(self, wd: int) -> None:
        """Forget watch ``wd``, which the kernel has removed."""
        rel = self._wd_path.pop(wd, None)
        if rel is not None and self._path_wd.get(rel) == wd:
            del self._path_wd[rel]

    def drop(self, rel: str) -> None:
        """Stop watching ``rel`` and every directory below it."""
        for path in [p for p in self._path_wd if p == rel or under(p, rel)]:
            wd = self._path_wd.pop(path)
            self._wd_path.pop(wd, None)
            self.remove(wd)

    def drop_all(self) -> None:
        """Stop every watch."""
        for wd in list(self._wd_path):
            self.remove(wd)
        self._wd_path.clear()
        self._path_wd.clear()

    def move(self, old: str, new: str) -> None:
        """The directory ``old`` was moved to ``new``: its watches and its subtree's follow."""
        for path in [p for p in self._path_wd if p == old or under(p, old)]:
            wd = self._path_wd.pop(path)
            moved_to = new + path[len(old) :]
            self._path_wd[moved_to] = wd
            self._wd_path[wd] = moved_to

    def read_events(self) -> list[inotify_simple.Event]:
        """Every event queued now (without blocking)."""
        data = bytearray()
        while True:
            try:
                chunk = os.read(self.fd, _READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
            if len(chunk) < _READ_SIZE // 2:
                break
        events: list[inotify_simple.Event] = inotify_simple.parse_events(bytes(data))
        return events

    def close(self) -> None:
        """Close the descriptor (a task waiting on it wakes with ``trio.ClosedResourceError``)."""
        trio.lowlevel.notify_closing(self.fd)
        self._inotify.close()
