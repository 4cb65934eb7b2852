"""A git repository in memory: :class:`engine.Git` over a model of commits, an index and a work tree.

One concept, the fake repository: the protocol's twelve calls and the calls a test sets a state
with, over one model; what needs no state (tree comparison, ignore rules, refs, messages) is in
:mod:`._git_model`.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, final

import trio

from .._core._errors import InvalidArgumentError
from .._ports._fs import StrPath
from .._ports._git import Git
from .._ports._git_errors import GitCommandError, NotARepositoryError
from .._ports._git_history import DiffStat, FileDiffStat, LogEntry, NameStatusEntry
from .._ports._git_status import (
    BranchInfo,
    IgnoredEntry,
    OrdinaryEntry,
    Status,
    StatusEntry,
    UntrackedEntry,
)
from ._fs import InMemoryFileSystem
from ._git_model import (
    ABSENT_MODE,
    FILE_MODE,
    REF,
    STEP,
    ZERO_OID,
    Commit,
    Tree,
    blob_oid,
    change_letter,
    check_paths,
    compare,
    ignore_rules,
    in_paths,
    is_ignored,
    line_counts,
    split_message,
)

__all__ = ["FakeGit"]


def _normalised(path: StrPath) -> Path:
    """``path`` with ``.`` and ``..`` folded away (lexically: nothing here is on disk)."""
    return Path(os.path.normpath(os.fspath(path)))


@final
class FakeGit:
    """An in-memory git work tree implementing :class:`engine.Git`.

    The model is git's: commits with their trees, branches, HEAD (on a branch or detached), an
    index and a work tree (an :class:`InMemoryFileSystem`, so what the engine writes there shows up
    as untracked, as in a real tree). Status, log and diffs are computed from it as git would,
    except that renames and copies are not detected (they show as a deletion and an addition) and
    ignore rules are simple (``.gitignore`` globs only). The upstream is what :meth:`set_upstream` says: there is no remote.

    Set a state with :meth:`write_file`, :meth:`delete_file`, :meth:`add`, :meth:`commit`,
    :meth:`checkout` and :meth:`detach`. Each call is a checkpoint and then runs without
    yielding, so it is atomic. Holds nothing to close.

    Args:
        root: the work tree's path (nothing on disk is touched).
        branch: the branch HEAD starts on (unborn until the first commit).
        worktree: the work tree's files (default: a new, empty :class:`InMemoryFileSystem`).
        author: the name and email of every commit's author and committer.
        clock: when commits are made (default: now, in UTC).
    """

    def __init__(
        self,
        root: StrPath = "/memory/repo",
        *,
        branch: str = "main",
        worktree: InMemoryFileSystem | None = None,
        author: tuple[str, str] = ("Test Author", "author@example.com"),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._fs = worktree if worktree is not None else InMemoryFileSystem(root)
        self._author = author
        self._clock = clock
        self._commits: dict[str, Commit] = {}
        self._branches: dict[str, str] = {}
        self._branch: str | None = branch
        self._detached: str | None = None
        self._index: Tree = {}
        self._upstream: tuple[str, int, int] | None = None
        self._status_override: Status | None = None
        self._serial = itertools.count(1)

    def __repr__(self) -> str:
        return f"<FakeGit {str(self.root)!r} on {self._branch or self._detached!r}>"

    @property
    def root(self) -> Path:
        """The work tree's top-level directory."""
        return self._fs.root

    @property
    def git_dir(self) -> Path:
        """``root / ".git"`` (a name only: git's own files are not modelled)."""
        return self._fs.root / ".git"

    @property
    def worktree(self) -> InMemoryFileSystem:
        """The work tree's files."""
        return self._fs

    # -------------------------------------------------------------------------- the model

    def _work(self) -> Tree:
        return {p: d for p, d in self._fs.files_nowait().items() if not p.startswith(".git/")}

    def _head_oid(self) -> str | None:
        if self._branch is None:
            return self._detached
        return self._branches.get(self._branch)

    def _head_tree(self) -> Tree:
        oid = self._head_oid()
        return {} if oid is None else self._commits[oid].tree

    def _fail(self, command: Sequence[str], code: int, stderr: str) -> GitCommandError:
        return GitCommandError(("git", *command), code, stderr)

    def _resolve(self, ref: str, command: Sequence[str]) -> str:
        """The commit ``ref`` names: ``HEAD``, a branch, an id or a unique id prefix (4+), with
        any number of ``~n`` / ``^`` suffixes."""
        match = REF.fullmatch(ref)
        if match is None:
            raise self._fail(command, 128, f"fatal: bad revision '{ref}'")
        base = match["base"]
        steps = sum(int(n or "1") for n in STEP.findall(match["steps"]))
        oid: str | None
        if base == "HEAD":
            oid = self._head_oid()
        elif base in self._branches:
            oid = self._branches[base]
        elif len(base) >= 4 and all(c in "0123456789abcdef" for c in base):
            found = [o for o in self._commits if o.startswith(base)]
            oid = found[0] if len(found) == 1 else None
        else:
            oid = None
        while oid is not None and steps:
            parents = self._commits[oid].entry.parents
            oid = parents[0] if parents else None
            steps -= 1
        if oid is None:
            raise self._fail(command, 128, f"fatal: bad revision '{ref}'")
        return oid

    def _reachable(self, oid: str) -> list[str]:
        """Commits reachable from ``oid``, newest commit time first (ties: the later made first)."""
        seen: set[str] = set()
        todo = [oid]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(self._commits[current].entry.parents)
        order = list(self._commits)
        return sorted(
            seen,
            key=lambda o: (self._commits[o].entry.committer_time, order.index(o)),
            reverse=True,
        )

    async def open_at(self, path: StrPath) -> FakeGit:
        """This repository, if ``path`` is inside its work tree (what the scribe's ``open_repo``
        does with a real one).

        Raises:
            NotARepositoryError: ``path`` is outside the work tree.

        Cancellation: checked before; nothing else happens.
        """
        await trio.lowlevel.checkpoint()
        where = _normalised(path)
        if where != self.root and self.root not in where.parents:
            raise NotARepositoryError(where)
        return self

    # ------------------------------------------------------------------ setting a state

    def write_file(self, path: str, content: bytes | str) -> None:
        """Write a file into the work tree (parents are made)."""
        self._fs.write_nowait(path, content)

    def delete_file(self, path: str) -> None:
        """Delete a file from the work tree."""
        rel = self._fs._rel(path)
        if rel not in self._fs._files:
            raise InvalidArgumentError(f"no file {path!r} in the work tree")
        del self._fs._files[rel]

    def set_status(self, status: Status | None) -> None:
        """Make :meth:`status` answer ``status`` (filtered by its ``paths``) instead of what the
        model computes, for states the model cannot reach (merge conflicts, say); None: back to
        the model."""
        self._status_override = status

    def set_upstream(self, upstream: str | None, *, ahead: int = 0, behind: int = 0) -> None:
        """Set (or with None, remove) the upstream and the ahead/behind counts status reports."""
        self._upstream = None if upstream is None else (upstream, ahead, behind)

    def checkout(self, branch: str, *, create: bool = False) -> None:
        """Switch to ``branch`` (with ``create``, a new one at HEAD); index and work tree follow.

        Files the two trees share unchanged are left alone, as git does; local changes are
        overwritten (the fake does not refuse a checkout over them).
        """
        if create:
            if branch in self._branches:
                raise InvalidArgumentError(f"branch {branch!r} exists")
            head = self._head_oid()
            if head is not None:
                self._branches[branch] = head
        elif branch not in self._branches:
            raise InvalidArgumentError(f"no branch {branch!r}")
        self._move_to(self._branches.get(branch))
        self._branch, self._detached = branch, None

    def detach(self, ref: str = "HEAD") -> None:
        """Detach HEAD at the commit ``ref`` names."""
        oid = self._resolve(ref, ("checkout", "--detach", ref))
        self._move_to(oid)
        self._branch, self._detached = None, oid

    def _move_to(self, oid: str | None) -> None:
        old, new = self._head_tree(), ({} if oid is None else self._commits[oid].tree)
        for path in old.keys() - new.keys():
            self._fs._files.pop(path, None)
        for path, data in new.items():
            if old.get(path) != data or path not in self._fs._files:
                self._fs.write_nowait(path, data)
        self._index = dict(new)

    # ----------------------------------------------------------------------- the protocol

    async def status(self, *, ignored: bool = False, paths: Sequence[str] | None = None) -> Status:
        """Branch headers and changed, untracked (and with ``ignored``, ignored) paths.

        ``.gitignore`` files are honoured (plain globs; no ``!`` negation, no global excludes).

        Cancellation: checked before; nothing else happens.
        """
        await trio.lowlevel.checkpoint()
        selected = check_paths(paths)
        if self._status_override is not None:
            fixed = self._status_override
            kept = tuple(e for e in fixed.entries if in_paths(e.path, selected))
            return Status(fixed.branch, kept)
        head, work = self._head_tree(), self._work()
        entries: list[StatusEntry] = []
        for path in sorted(head.keys() | self._index.keys()):
            if not in_paths(path, selected):
                continue
            index = change_letter(head, self._index, path)
            worktree = change_letter(self._index, work, path) if path in self._index else "."
            if (index, worktree) == (".", "."):
                continue
            entries.append(
                OrdinaryEntry(
                    path=path,
                    index=index,
                    worktree=worktree,
                    mode_head=FILE_MODE if path in head else ABSENT_MODE,
                    mode_index=FILE_MODE if path in self._index else ABSENT_MODE,
                    mode_worktree=FILE_MODE if path in work else ABSENT_MODE,
                    oid_head=blob_oid(head[path]) if path in head else ZERO_OID,
                    oid_index=blob_oid(self._index[path]) if path in self._index else ZERO_OID,
                )
            )
        rules = ignore_rules(work)
        untracked = [p for p in sorted(work.keys() - self._index.keys()) if in_paths(p, selected)]
        entries.extend(UntrackedEntry(p) for p in untracked if not is_ignored(p, rules))
        if ignored:
            entries.extend(IgnoredEntry(p) for p in untracked if is_ignored(p, rules))
        up = self._upstream
        branch = BranchInfo(
            oid=self._head_oid(),
            head=self._branch,
            upstream=None if up is None else up[0],
            ahead=None if up is None else up[1],
            behind=None if up is None else up[2],
        )
        return Status(branch, tuple(entries))

    async def log(
        self,
        count: int = 20,
        *,
        since: datetime | None = None,
        paths: Sequence[str] = (),
        ref: str = "HEAD",
    ) -> tuple[LogEntry, ...]:
        """The newest ``count`` commits reachable from ``ref`` (or ``a..b``), newest first.

        Raises:
            GitCommandError: ``ref`` names no commit.
            ValueError: ``count`` is negative.

        Cancellation: checked before; nothing else happens.
        """
        await trio.lowlevel.checkpoint()
        if count < 0:
            raise ValueError("count must be >= 0")
        selected = check_paths(paths) if paths else None
        command = ("log", ref)
        if ref == "HEAD" and self._head_oid() is None:
            return ()
        excluded: set[str] = set()
        if ".." in ref:
            low, high = ref.split("..", 1)
            excluded = set(self._reachable(self._resolve(low or "HEAD", command)))
            start = self._resolve(high or "HEAD", command)
        else:
            start = self._resolve(ref, command)
        out = []
        for oid in self._reachable(start):
            commit = self._commits[oid]
            if oid in excluded or (since is not None and commit.entry.committer_time < since):
                continue
            if selected is not None:
                parents = commit.entry.parents
                before = self._commits[parents[0]].tree if parents else {}
                if not compare(before, commit.tree, selected):
                    continue
            out.append(commit.entry)
        return tuple(out[:count])

    def _diff_sides(self, ref: str, cached: bool, command: Sequence[str]) -> tuple[Tree, Tree]:
        old = self._commits[self._resolve(ref, command)].tree
        if cached:
            return old, dict(self._index)
        work = self._work()
        return old, {p: work[p] for p in self._index if p in work}

    async def diff_stat(
        self, ref: str = "HEAD", *, cached: bool = False, paths: Sequence[str] | None = None
    ) -> DiffStat:
        """Per-file line counts of the work tree (or the index) against ``ref``.

        Raises:
            GitCommandError: ``ref`` names no commit (``HEAD`` before the first commit too).

        Cancellation: checked before; nothing else happens.
        """
        await trio.lowlevel.checkpoint()
        selected = check_paths(paths)
        if selected == ():
            return DiffStat()
        old, new = self._diff_sides(ref, cached, ("diff", "--numstat", ref))
        files = []
        for _, path in compare(old, new, selected):
            added, deleted = line_counts(old.get(path, b""), new.get(path, b""))
            files.append(FileDiffStat(path, added, deleted))
        return DiffStat(tuple(files))

    async def name_status(
        self, ref: str = "HEAD", *, cached: bool = False, paths: Sequence[str] | None = None
    ) -> tuple[NameStatusEntry, ...]:
        """Which files differ from ``ref`` and how (``A``, ``M``, ``D``).

        Raises:
            GitCommandError: ``ref`` names no commit.

        Cancellation: checked before; nothing else happens.
        """
        await trio.lowlevel.checkpoint()
        selected = check_paths(paths)
        if selected == ():
            return ()
        old, new = self._diff_sides(ref, cached, ("diff", "--name-status", ref))
        return tuple(NameStatusEntry(s, p) for s, p in compare(old, new, selected))

    async def commit_files(self, oid: str) -> tuple[NameStatusEntry, ...]:
        """The files commit ``oid`` changed against its first parent (a root commit: all added).

        Raises:
            GitCommandError: ``oid`` names no commit.
            InvalidArgumentError: ``oid`` is empty or starts with ``-``.

        Cancellation: checked before; nothing else happens.
        """
        await trio.lowlevel.checkpoint()
        if not isinstance(oid, str) or not oid or oid.startswith("-"):
            raise InvalidArgumentError(f"invalid commit {oid!r}")
        commit = self._commits[self._resolve(oid, ("diff-tree", oid))]
        parents = commit.entry.parents
        before = self._commits[parents[0]].tree if parents else {}
        return tuple(NameStatusEntry(s, p) for s, p in compare(before, commit.tree, None))

    async def head(self) -> str | None:
        """The commit HEAD points at, or None before the first commit. Cancellation: checked."""
        await trio.lowlevel.checkpoint()
        return self._head_oid()

    async def current_branch(self) -> str | None:
        """The checked-out branch, or None when detached. Cancellation: checked before."""
        await trio.lowlevel.checkpoint()
        return self._branch

    async def show_file(self, ref: str, path: str) -> bytes:
        """The content of ``path`` in ``ref``.

        Raises:
            GitCommandError: no such ref, or no such path in it.

        Cancellation: checked before; nothing else happens.
        """
        await trio.lowlevel.checkpoint()
        if ":" in ref:
            raise ValueError(f"ref must not contain ':': {ref!r}")
        command = ("cat-file", "blob", f"{ref}:{path}")
        tree = self._commits[self._resolve(ref, command)].tree
        if path not in tree:
            raise self._fail(command, 128, f"fatal: path '{path}' does not exist in '{ref}'")
        return tree[path]

    async def add(self, paths: Sequence[str] = (), *, all: bool = False) -> None:
        """Stage ``paths`` (a directory stands for what is under it), or every change with ``all``.

        Raises:
            GitCommandError: a path matches nothing.

        Cancellation: checked before; the index is updated or left as it was.
        """
        await trio.lowlevel.checkpoint()
        work = self._work()
        if all:
            rules = ignore_rules(work)
            self._index = {
                p: d for p, d in work.items() if p in self._index or not is_ignored(p, rules)
            }
            return
        selected = check_paths(paths) or ()
        staged = dict(self._index)
        for p in selected:
            matched = [q for q in work.keys() | staged.keys() if in_paths(q, (p,))]
            if not matched:
                raise self._fail(
                    ("add", "--", *paths), 128, f"fatal: pathspec '{p}' did not match any files"
                )
            for q in matched:
                if q in work:
                    staged[q] = work[q]
                else:
                    del staged[q]
        self._index = staged

    async def commit(
        self, message: str, *, allow_empty: bool = False, no_verify: bool = False
    ) -> str:
        """Commit the index and return the new commit id (there are no hooks to skip).

        Raises:
            GitCommandError: nothing is staged (unless ``allow_empty``), or the message is empty.

        Cancellation: checked before; the commit is made or not.
        """
        await trio.lowlevel.checkpoint()
        command = ("commit", "-m", message)
        subject, body = split_message(message)
        if not subject:
            raise self._fail(command, 1, "Aborting commit due to empty commit message.")
        parent = self._head_oid()
        if not allow_empty and self._index == self._head_tree():
            raise self._fail(command, 1, "nothing to commit, working tree clean")
        when = self._clock()
        tree = dict(self._index)
        seed = repr((sorted(tree.items()), parent, message, when, next(self._serial)))
        oid = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()
        name, email = self._author
        entry = LogEntry(
            oid=oid,
            parents=() if parent is None else (parent,),
            author_name=name,
            author_email=email,
            author_time=when,
            committer_time=when,
            subject=subject,
            body=body,
        )
        self._commits[oid] = Commit(entry, tree)
        if self._branch is None:
            self._detached = oid
        else:
            self._branches[self._branch] = oid
        return oid


if TYPE_CHECKING:

    def _conforms(git: FakeGit) -> Git:
        return git
