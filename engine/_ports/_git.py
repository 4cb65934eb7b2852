"""The version-control protocol: what the engine asks of a repository, as typed records.

Nothing here does I/O. Paths are repository-root relative, ``/``-separated strings; bytes that
are not valid UTF-8 are kept as surrogate escapes (:func:`os.fsdecode`), so any path round-trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeAlias

from .._core._errors import ScribeError

__all__ = [
    "BranchInfo",
    "DiffStat",
    "FileDiffStat",
    "Git",
    "GitCommandError",
    "GitError",
    "GitNotFoundError",
    "IgnoredEntry",
    "LogEntry",
    "NameStatusEntry",
    "NotARepositoryError",
    "OrdinaryEntry",
    "RenamedEntry",
    "StaleLockError",
    "Status",
    "StatusEntry",
    "UnmergedEntry",
    "UntrackedEntry",
]


# ------------------------------------------------------------------------------------------ errors


class GitError(ScribeError):
    """Root of the errors a :class:`Git` implementation raises."""


class GitNotFoundError(GitError):
    """The ``git`` executable could not be started (not installed or not on ``PATH``)."""


class NotARepositoryError(GitError):
    """The path is not inside a git work tree.

    Attributes:
        path: the path that was asked for.
    """

    def __init__(self, path: Path, detail: str = "") -> None:
        message = f"not a git work tree: {path}"
        super().__init__(f"{message} ({detail})" if detail else message)
        self.path = path


class StaleLockError(GitError):
    """A ``index.lock`` was found when the repository was opened; it is reported, never deleted.

    Another git process may still own it. If none does, a person removes it after checking.

    Attributes:
        path: the lock file's absolute path.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(f"git lock file exists (another git process, or a stale lock): {path}")
        self.path = path


class GitCommandError(GitError):
    """A git command exited with a non-zero status.

    Attributes:
        command: the argument vector that was run.
        exit_code: the process exit status (negative: killed by that signal).
        stderr: what git wrote to its standard error, decoded.
    """

    def __init__(self, command: Sequence[str], exit_code: int, stderr: str) -> None:
        self.command = tuple(command)
        self.exit_code = exit_code
        self.stderr = stderr
        first_line = stderr.strip().splitlines()[0] if stderr.strip() else "no output"
        super().__init__(f"{' '.join(self.command)} exited with {exit_code}: {first_line}")


# ------------------------------------------------------------------------------------------ status


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


# ------------------------------------------------------------------------------------ log and diff


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


# ------------------------------------------------------------------------------------ the protocol


class Git(Protocol):
    """A git work tree the engine reads (and, for tools and tests, writes).

    Implementations admit each git process through the engine's priority gate under the calling
    session's priority. Every call is cancellable: when it returns or raises, the process it started
    is gone, and a cancelled read leaves no lock file behind.

    Reads never write to the repository, not even the index refresh git does on its own initiative
    after a ``status`` or ``diff``: a watcher of ``.git/index`` sees only what others staged.
    """

    @property
    def root(self) -> Path:
        """The work tree's top-level directory."""
        ...

    @property
    def git_dir(self) -> Path:
        """The repository's git directory (``.git``, or elsewhere for a linked work tree)."""
        ...

    async def status(self, *, ignored: bool = False, paths: Sequence[str] | None = None) -> Status:
        """The branch headers and every changed, untracked (and optionally ignored) path.

        ``paths`` limits the entries to those paths (root-relative, taken literally; a directory
        stands for everything under it; empty: no entries); the branch headers are always the whole
        repository's. None: the whole tree.
        """
        ...

    async def log(
        self,
        count: int = 20,
        *,
        since: datetime | None = None,
        paths: Sequence[str] = (),
        ref: str = "HEAD",
    ) -> tuple[LogEntry, ...]:
        """The newest ``count`` commits reachable from ``ref``, newest first (none if unborn).

        ``paths``: only commits touching those paths (taken literally; empty: every commit).
        """
        ...

    async def diff_stat(
        self, ref: str = "HEAD", *, cached: bool = False, paths: Sequence[str] | None = None
    ) -> DiffStat:
        """Per-file line counts of the work tree (or the index, if ``cached``) against ``ref``.

        ``paths`` limits the diff to those paths, as for :meth:`status`.
        """
        ...

    async def name_status(
        self, ref: str = "HEAD", *, cached: bool = False, paths: Sequence[str] | None = None
    ) -> tuple[NameStatusEntry, ...]:
        """Which files differ from ``ref`` and how (added, modified, deleted, renamed, ...).

        ``paths`` limits the diff to those paths, as for :meth:`status`.
        """
        ...

    async def commit_files(self, oid: str) -> tuple[NameStatusEntry, ...]:
        """The files commit ``oid`` changed and how.

        A commit is compared with its first parent (for a merge: what it brought into the branch),
        a root commit with the empty tree (every file added).
        """
        ...

    async def head(self) -> str | None:
        """The commit HEAD points at, or ``None`` before the first commit."""
        ...

    async def current_branch(self) -> str | None:
        """The checked-out branch's short name, or ``None`` when HEAD is detached."""
        ...

    async def show_file(self, ref: str, path: str) -> bytes:
        """The content of ``path`` (root-relative) as it is in ``ref``."""
        ...

    async def add(self, paths: Sequence[str] = (), *, all: bool = False) -> None:
        """Stage ``paths`` (or every change, with ``all``)."""
        ...

    async def commit(
        self, message: str, *, allow_empty: bool = False, no_verify: bool = False
    ) -> str:
        """Commit what is staged and return the new commit id."""
        ...
