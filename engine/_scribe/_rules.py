"""The scribe's decisions, free of I/O: backlog ids, how a change batch is read, and when a session ends.

Imports no trio. The scribe feeds these functions what it observed (a change batch, two repository
states) and does what they return.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from .._core._errors import InvalidArgumentError
from .._ports._fs import Change, ChangeBatch, ChangeKind
from .._ports._git_status import Status
from .._ports._worklog_records import EndReason, FileChanges
from ._worklog_filter import PathFilter

__all__ = [
    "DEFAULT_BACKLOG_PATTERN",
    "DEFAULT_IDLE_TIMEOUT",
    "Aspect",
    "BatchReading",
    "EndRules",
    "Observation",
    "RepoState",
    "backlog_id_from_branch",
    "observe",
    "read_batch",
]

#: Backlog ids in branch names: ``B-1042`` in ``feat/B-1042-login`` (any case; reported upper-case).
DEFAULT_BACKLOG_PATTERN: Final = r"(?<![A-Za-z0-9])[Bb]-[0-9]+(?![0-9])"

#: Seconds without activity after which a session ends, by default.
DEFAULT_IDLE_TIMEOUT: Final = 30 * 60.0


def backlog_id_from_branch(
    branch: str | None, pattern: str = DEFAULT_BACKLOG_PATTERN
) -> str | None:
    """The backlog id a branch name carries (the first match of ``pattern``, upper-cased), or None.

    Raises:
        InvalidArgumentError: ``pattern`` is not a valid regular expression.
    """
    if not branch:
        return None
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise InvalidArgumentError(f"invalid backlog id pattern {pattern!r}: {exc}") from None
    m = rx.search(branch)
    return m.group(0).upper() if m else None


@dataclass(frozen=True, slots=True)
class EndRules:
    """When a session ends by itself. Each rule can be turned off.

    Attributes:
        idle_timeout: seconds without activity (None: never).
        on_branch_switch: end when the work tree switches to another branch.
        on_push: end when a push completed: HEAD equals its upstream and the tree is clean.
    """

    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT
    on_branch_switch: bool = True
    on_push: bool = True

    def __post_init__(self) -> None:
        t = self.idle_timeout
        if t is not None and (
            isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t <= 0
        ):
            raise InvalidArgumentError(f"idle_timeout must be a positive number or None, not {t!r}")


@dataclass(frozen=True, slots=True)
class RepoState:
    """What the scribe knows of a work tree's HEAD at one moment.

    Attributes:
        branch: the checked-out branch (None: detached).
        head: the commit HEAD points at (None: no commit yet).
        upstream: the upstream branch, if set.
        ahead, behind: commits ahead of and behind the upstream (None without one).
        clean: nothing staged, modified, conflicted or untracked.
    """

    branch: str | None = None
    head: str | None = None
    upstream: str | None = None
    ahead: int | None = None
    behind: int | None = None
    clean: bool = True

    @classmethod
    def from_status(cls, status: Status) -> RepoState:
        """The state a parsed ``git status`` shows."""
        b = status.branch
        return cls(b.head, b.oid, b.upstream, b.ahead, b.behind, status.clean)

    @property
    def in_sync(self) -> bool:
        """Whether HEAD equals its upstream."""
        return (
            self.upstream is not None
            and self.head is not None
            and self.ahead == 0
            and self.behind == 0
        )


@dataclass(frozen=True, slots=True)
class Observation:
    """What changed between two repository states, and whether the session ends for it.

    Attributes:
        branch_switch: ``(old, new)`` branch names when the checked-out branch changed.
        head_moved: ``(old, new)`` commits when HEAD moved on the same branch.
        pushed: a push completed (HEAD reached its upstream from ahead of it, or gained one).
        end: the rule that ends the session, if any.
    """

    branch_switch: tuple[str | None, str | None] | None = None
    head_moved: tuple[str | None, str] | None = None
    pushed: bool = False
    end: EndReason | None = None


def observe(old: RepoState, new: RepoState, rules: EndRules) -> Observation:
    """Compare two repository states under ``rules``.

    A branch switch ends the session (if the rule is on) and is not also reported as a HEAD move. A push
    is reported when HEAD is in sync with its upstream and was not before on the same branch (it was
    ahead, or had no upstream): a pull that only caught up from behind is no push. The push rule ends
    the session only if the tree is clean too.
    """
    if old.branch != new.branch and not (old.branch is None and new.branch is None):
        end = EndReason.BRANCH_SWITCH if rules.on_branch_switch else None
        return Observation(branch_switch=(old.branch, new.branch), end=end)
    moved = None
    if new.head is not None and new.head != old.head:
        moved = (old.head, new.head)
    pushed = (
        new.in_sync
        and not old.in_sync
        and (old.upstream is None or (old.ahead or 0) > 0)
        and (old.head is not None or moved is not None)
    )
    end = EndReason.PUSH_COMPLETED if pushed and new.clean and rules.on_push else None
    return Observation(head_moved=moved, pushed=pushed, end=end)


class Aspect(enum.StrEnum):
    """A part of a session's world a change can touch; context sources depend on aspects."""

    TREE = "tree"  # files in the work tree
    INDEX = "index"  # the staging area
    HEAD = "head"  # HEAD, the branch it names, or where the branch points
    UPSTREAM = "upstream"  # remote-tracking refs
    WORKLOG = "worklog"
    SUMMARY = "summary"
    REGISTRY = "registry"


@dataclass(frozen=True, slots=True)
class BatchReading:
    """A change batch read by the scribe.

    Attributes:
        files: the filtered file changes that become a ``files`` entry.
        aspects: what the batch touched.
        tree_paths: every work-tree path it mentions (filtered or not; ``.git`` excluded).
        git_paths: paths inside the git directory it mentions (relative to it).
    """

    files: FileChanges
    aspects: frozenset[Aspect]
    tree_paths: frozenset[str]
    git_paths: frozenset[str]


def _git_aspect(rel: str) -> Aspect | None:
    if rel in ("HEAD", "ORIG_HEAD", "packed-refs", "logs/HEAD") or rel.startswith(
        ("refs/heads/", "logs/refs/heads/")
    ):
        return Aspect.HEAD
    if rel in ("FETCH_HEAD",) or rel.startswith(("refs/remotes/", "logs/refs/remotes/")):
        return Aspect.UPSTREAM
    if rel == "index":
        return Aspect.INDEX
    return None


def read_batch(
    batch: ChangeBatch,
    path_filter: PathFilter,
    *,
    git_prefix: str | None = ".git",
    ignore: Iterable[str] = (),
) -> BatchReading:
    """Split a change batch into worklog file changes and the aspects it touched.

    Args:
        batch: what the watcher reported.
        path_filter: which work-tree paths become entries.
        git_prefix: the git directory relative to the watched root (``.git``), or ``""`` when the
            watched root *is* the git directory, or None when it is not watched.
        ignore: paths the scribe writes itself (the worklog mirror): they touch nothing.

    A rescan batch touches the tree, the index and HEAD (the watcher lost track, so anything may have
    changed).
    """
    skip = frozenset(ignore)
    tree: set[str] = set()
    gits: set[str] = set()
    aspects: set[Aspect] = set()
    folded: list[tuple[str, str, str | None]] = []
    prefix = None if git_prefix is None else (git_prefix.strip("/") + "/" if git_prefix else "")

    def git_rel(path: str) -> str | None:
        if prefix is None:
            return None
        if prefix == "":
            return path
        if path == prefix[:-1]:
            return ""
        return path[len(prefix) :] if path.startswith(prefix) else None

    change: Change
    for change in batch.changes:
        paths = [change.path] if change.old_path is None else [change.old_path, change.path]
        in_git = False
        for p in paths:
            rel = git_rel(p)
            if rel is not None:
                in_git = True
                gits.add(rel)
                a = _git_aspect(rel)
                if a is not None:
                    aspects.add(a)
            elif p not in skip:
                tree.add(p)
                aspects.add(Aspect.TREE)
        if in_git or change.is_dir:
            continue
        if change.kind is ChangeKind.MOVED and change.old_path is not None:
            old_ok = change.old_path not in skip and path_filter.matches(change.old_path)
            new_ok = change.path not in skip and path_filter.matches(change.path)
            if old_ok and new_ok:
                folded.append(("moved", change.path, change.old_path))
            elif new_ok:
                folded.append(("created", change.path, None))
            elif old_ok:
                folded.append(("deleted", change.old_path, None))
            continue
        if change.path in skip or not path_filter.matches(change.path):
            continue
        folded.append((change.kind.value, change.path, None))
    if batch.rescan:
        aspects |= {Aspect.TREE, Aspect.INDEX, Aspect.HEAD, Aspect.UPSTREAM}
    return BatchReading(
        FileChanges.fold(folded), frozenset(aspects), frozenset(tree), frozenset(gits)
    )
