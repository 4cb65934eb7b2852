"""A parsed ``git status --porcelain=v2 --branch``: the branch headers and one record per entry.

Paths are repository-root relative, ``/``-separated strings; bytes that are not valid UTF-8 are kept as
surrogate escapes (:func:`os.fsdecode`), so any path round-trips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "BranchInfo",
    "IgnoredEntry",
    "OrdinaryEntry",
    "RenamedEntry",
    "Status",
    "StatusEntry",
    "UnmergedEntry",
    "UntrackedEntry",
]


@dataclass(frozen=True, slots=True)
class BranchInfo:
    """The ``# branch.*`` headers of ``git status --porcelain=v2 --branch``.

    Attributes:
        oid: the commit HEAD points at, or ``None`` before the first commit.
        head: the branch name, or ``None`` when HEAD is detached.
        upstream: the upstream branch (``origin/main``), or ``None`` when none is set.
        ahead: commits on HEAD not on the upstream (``None`` without an upstream or when it is
            gone).
        behind: commits on the upstream not on HEAD (same rule).
    """

    oid: str | None = None
    head: str | None = None
    upstream: str | None = None
    ahead: int | None = None
    behind: int | None = None

    @property
    def detached(self) -> bool:
        """Whether HEAD points at a commit rather than a branch."""
        return self.head is None


@dataclass(frozen=True, slots=True)
class OrdinaryEntry:
    """A tracked path changed in the index and/or the work tree (porcelain v2 ``1`` line).

    Attributes:
        path: the path.
        index: the staged status letter (``X``: ``.`` unchanged, ``M``, ``T``, ``A``, ``D``).
        worktree: the unstaged status letter (``Y``).
        submodule: the 4-character submodule state (``N...`` for a plain file).
        mode_head: octal file mode in HEAD. mode_index, mode_worktree: in the index, in the tree.
        oid_head: object id in HEAD. oid_index: object id in the index.
    """

    path: str
    index: str
    worktree: str
    submodule: str = "N..."
    mode_head: str = ""
    mode_index: str = ""
    mode_worktree: str = ""
    oid_head: str = ""
    oid_index: str = ""


@dataclass(frozen=True, slots=True)
class RenamedEntry:
    """A path renamed or copied in the index (porcelain v2 ``2`` line).

    Attributes:
        path: the new path.
        orig_path: the path it was renamed or copied from.
        copied: ``True`` for a copy (``C``), ``False`` for a rename (``R``).
        score: similarity percentage (0-100).
        index, worktree, submodule, modes and oids: as in :class:`OrdinaryEntry`.
    """

    path: str
    orig_path: str
    index: str
    worktree: str
    copied: bool = False
    score: int = 100
    submodule: str = "N..."
    mode_head: str = ""
    mode_index: str = ""
    mode_worktree: str = ""
    oid_head: str = ""
    oid_index: str = ""


@dataclass(frozen=True, slots=True)
class UnmergedEntry:
    """A path with a merge conflict (porcelain v2 ``u`` line).

    Attributes:
        path: the path.
        index, worktree: the conflict letters (``UU`` both modified, ``AA`` both added, ...).
        submodule: the 4-character submodule state.
        mode_stage1, mode_stage2, mode_stage3, mode_worktree: octal modes of the base, ours, theirs
            and the work tree.
        oid_stage1, oid_stage2, oid_stage3: object ids of base, ours and theirs (all zeros: absent).
    """

    path: str
    index: str
    worktree: str
    submodule: str = "N..."
    mode_stage1: str = ""
    mode_stage2: str = ""
    mode_stage3: str = ""
    mode_worktree: str = ""
    oid_stage1: str = ""
    oid_stage2: str = ""
    oid_stage3: str = ""


@dataclass(frozen=True, slots=True)
class UntrackedEntry:
    """A path git does not track and does not ignore (porcelain v2 ``?`` line)."""

    path: str


@dataclass(frozen=True, slots=True)
class IgnoredEntry:
    """A path matched by an ignore rule (porcelain v2 ``!`` line; only if asked for)."""

    path: str


#: One entry of a parsed ``git status``: ordinary, renamed, unmerged, untracked or ignored.
StatusEntry: TypeAlias = (
    OrdinaryEntry | RenamedEntry | UnmergedEntry | UntrackedEntry | IgnoredEntry
)


@dataclass(frozen=True, slots=True)
class Status:
    """A parsed ``git status``.

    Attributes:
        branch: the branch headers.
        entries: every entry in the order git printed them.
    """

    branch: BranchInfo
    entries: tuple[StatusEntry, ...] = ()

    @property
    def clean(self) -> bool:
        """Whether nothing is staged, modified, conflicted or untracked (ignored does not count)."""
        return not any(not isinstance(e, IgnoredEntry) for e in self.entries)

    @property
    def changed(self) -> tuple[OrdinaryEntry | RenamedEntry, ...]:
        """Tracked entries staged or modified."""
        return tuple(e for e in self.entries if isinstance(e, OrdinaryEntry | RenamedEntry))

    @property
    def conflicts(self) -> tuple[UnmergedEntry, ...]:
        """Entries with a merge conflict."""
        return tuple(e for e in self.entries if isinstance(e, UnmergedEntry))

    @property
    def untracked(self) -> tuple[str, ...]:
        """Untracked paths."""
        return tuple(e.path for e in self.entries if isinstance(e, UntrackedEntry))

    @property
    def ignored(self) -> tuple[str, ...]:
        """Ignored paths (empty unless asked for)."""
        return tuple(e.path for e in self.entries if isinstance(e, IgnoredEntry))
