"""Commits and diffs as git reports them: log entries, numstat counts, name-status lines.

Paths are repository-root relative, ``/``-separated strings (surrogate escapes for bytes that are not
UTF-8), as in :mod:`._git_status`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["DiffStat", "FileDiffStat", "LogEntry", "NameStatusEntry"]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One commit of ``git log``.

    Attributes:
        oid: the commit id.
        parents: parent commit ids (two or more for a merge).
        author_name, author_email: the author.
        author_time: when it was authored (timezone-aware).
        committer_time: when it was committed (timezone-aware).
        subject: the first line of the message.
        body: the rest of the message (may be empty).
    """

    oid: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    author_time: datetime
    committer_time: datetime
    subject: str
    body: str = ""


@dataclass(frozen=True, slots=True)
class FileDiffStat:
    """Lines added and deleted in one file (``git diff --numstat``).

    Attributes:
        path: the path (the new path for a rename).
        old_path: the old path of a rename or copy, else ``None``.
        added, deleted: line counts, ``None`` for a binary file.
    """

    path: str
    added: int | None
    deleted: int | None
    old_path: str | None = None

    @property
    def binary(self) -> bool:
        """Whether git counted no lines because the file is binary."""
        return self.added is None


@dataclass(frozen=True, slots=True)
class DiffStat:
    """A diff stat: per-file counts and totals (binary files count as changed files, zero lines)."""

    files: tuple[FileDiffStat, ...] = ()

    @property
    def files_changed(self) -> int:
        """How many files differ."""
        return len(self.files)

    @property
    def insertions(self) -> int:
        """Lines added in total."""
        return sum(f.added or 0 for f in self.files)

    @property
    def deletions(self) -> int:
        """Lines deleted in total."""
        return sum(f.deleted or 0 for f in self.files)


@dataclass(frozen=True, slots=True)
class NameStatusEntry:
    """One line of ``git diff --name-status``.

    Attributes:
        status: ``A`` added, ``M`` modified, ``D`` deleted, ``R`` renamed, ``C`` copied,
            ``T`` type changed, ``U`` unmerged.
        path: the path (the new path for a rename or copy).
        old_path: the source of a rename or copy, else ``None``.
        score: similarity of a rename or copy (0-100), else ``None``.
    """

    status: str
    path: str
    old_path: str | None = None
    score: int | None = None
