"""The batch a watcher is gathering: changes coalesced per path, released after a quiet period or a cap."""

from __future__ import annotations

from typing import final

import trio

from engine import Change, ChangeBatch, ChangeKind

__all__ = ["ChangeBatcher"]


@final
class ChangeBatcher:
    """Changes waiting to be returned as one :class:`engine.ChangeBatch`.

    A batch is due once no change arrived for ``quiet`` seconds, or ``cap`` seconds after its first
    change, whichever comes first (:meth:`deadline`). A modification of a path already reported in the
    batch (created, modified or moved there) is not reported again.

    Attributes:
        rescan: the batch comes from a full scan (it is returned flagged ``rescan``).
        emitted: changes added in all (to tell whether a scan found anything).
        batches: batches taken.
    """

    def __init__(self, quiet: float, cap: float) -> None:
        self._quiet = quiet
        self._cap = cap
        self._pending: list[Change] = []
        self._latest: dict[str, int] = {}  # path -> index in _pending of its latest change
        self._first = 0.0
        self._last = 0.0
        self.rescan = False
        self.emitted = 0
        self.batches = 0

    def __bool__(self) -> bool:
        return bool(self._pending)

    def emit(self, kind: ChangeKind, rel: str, is_dir: bool, old: str | None = None) -> None:
        """Add one change (at trio's current time)."""
        if kind is ChangeKind.MODIFIED:
            index = self._latest.get(rel)
            if index is not None and self._pending[index].kind is not ChangeKind.DELETED:
                return  # already reported as created, modified or moved here in this batch
        now = trio.current_time()
        if not self._pending:
            self._first = now
        self._last = now
        self.emitted += 1
        self._latest[rel] = len(self._pending)
        self._pending.append(Change(kind=kind, path=rel, old_path=old, is_dir=is_dir))

    def deadline(self) -> float:
        """When the batch is due (meaningful while it holds changes)."""
        return min(self._last + self._quiet, self._first + self._cap)

    def due(self, now: float) -> bool:
        """Whether the batch (holding changes) is due at ``now``."""
        return now >= self.deadline()

    def take(self) -> ChangeBatch:
        """The batch, and start a new one."""
        batch = ChangeBatch(changes=tuple(self._pending), rescan=self.rescan)
        self.discard()
        self.batches += 1
        return batch

    def discard(self) -> None:
        """Drop what was gathered (the initial scan is a baseline, not a change)."""
        self._pending = []
        self._latest = {}
        self.rescan = False
