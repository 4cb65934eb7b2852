"""What a watcher tells of its state."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WatcherStatistics"]


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
