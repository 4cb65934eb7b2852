"""The watchers a daemon has open, counted: watches in use against the system's limit, and the
kernel queue overflows they met (for the ``watch_limit`` and ``watcher_overflow`` alerts)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, final

from ._open_watcher import open_watcher
from ._watcher import InotifyWatcher

__all__ = ["MAX_USER_WATCHES", "WatchTotals", "WatcherTracker"]

#: Where Linux keeps the most inotify watches one user may hold.
MAX_USER_WATCHES: Final = Path("/proc/sys/fs/inotify/max_user_watches")


@final
@dataclass(frozen=True, slots=True)
class WatchTotals:
    """The watchers open now (``watchers``, their ``watches``), the ``overflows`` every watcher
    opened met, and the system's ``max_user_watches`` (None: unknown)."""

    watchers: int
    watches: int
    overflows: int
    max_user_watches: int | None


def _read_limit(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


@final
class WatcherTracker:
    """Opens watchers (as :func:`open_watcher`) and counts them.

    Args:
        limit_file: where the system's watch limit is read, once (default
            :data:`MAX_USER_WATCHES`).
    """

    def __init__(self, limit_file: Path = MAX_USER_WATCHES) -> None:
        self._open: set[InotifyWatcher] = set()
        self._past_overflows = 0
        self._limit = _read_limit(limit_file)

    @contextlib.asynccontextmanager
    async def open(self, root: Any, **options: Any) -> AsyncIterator[InotifyWatcher]:
        """:func:`open_watcher` with the same arguments, counted while open.

        Cancellation: as :func:`open_watcher`.
        """
        async with open_watcher(root, **options) as watcher:
            self._open.add(watcher)
            try:
                yield watcher
            finally:
                self._open.discard(watcher)
                self._past_overflows += watcher.statistics().overflows

    def totals(self) -> WatchTotals:
        """The counts now."""
        stats = [w.statistics() for w in self._open]
        return WatchTotals(
            watchers=len(stats),
            watches=sum(s.watches for s in stats),
            overflows=self._past_overflows + sum(s.overflows for s in stats),
            max_user_watches=self._limit,
        )
