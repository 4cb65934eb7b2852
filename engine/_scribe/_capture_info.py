"""A live capture's snapshot: the repository as last observed and the writer's counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CaptureInfo"]


@dataclass(frozen=True, slots=True)
class CaptureInfo:
    """A snapshot of a live capture.

    Attributes:
        session_id: the session.
        root: the watched work tree.
        branch, head, upstream, ahead, behind, clean: the repository as last observed.
        entries: entries stored so far (the last seq).
        carried: entries made but not yet stored (carried across a failed write).
        journaled: carried entries written ahead to the journal (they survive a crash).
        write_errors: writes that failed (their entries were carried and retried).
        journal_errors: journal writes that failed (those entries stayed in memory only).
        idle_for: seconds since the last activity.
        batches: change batches handled.
        mirror: the mirror file (root-relative), if any.
    """

    session_id: str
    root: str
    branch: str | None
    head: str | None
    upstream: str | None
    ahead: int | None
    behind: int | None
    clean: bool
    entries: int
    carried: int
    journaled: int
    write_errors: int
    journal_errors: int
    idle_for: float
    batches: int
    mirror: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "session_id": self.session_id,
            "root": self.root,
            "branch": self.branch,
            "head": self.head,
            "upstream": self.upstream,
            "ahead": self.ahead,
            "behind": self.behind,
            "clean": self.clean,
            "entries": self.entries,
            "carried": self.carried,
            "journaled": self.journaled,
            "write_errors": self.write_errors,
            "journal_errors": self.journal_errors,
            "idle_for": self.idle_for,
            "batches": self.batches,
            "mirror": self.mirror,
        }
