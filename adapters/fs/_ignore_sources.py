"""Where a watched work tree's ignore rules come from, and when they must be read again.

Asked of git once when the watcher opens: whether the root is a work tree, where its exclude file is
(``git rev-parse --git-path info/exclude``, so a linked worktree's is found), and the global excludes file
(``git config --path --get core.excludesFile``, else ``$XDG_CONFIG_HOME/git/ignore`` or
``~/.config/git/ignore``). Which tracked files the rules would ignore is asked of git too
(``git ls-files --cached --ignored --exclude-standard``), at the start and whenever the index or a rule
changed. A ``.gitignore`` or the exclude file is noticed through the watcher's own events; a file
outside the tree (the global one, a linked worktree's exclude file) is checked at each reconcile scan.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Final, final

import trio

from ..git._process import git_env
from ._gitignore import GITIGNORE, GitIgnores, IgnoreFile, read_ignore_file
from ._tree_rules import TreeRules
from ._watch_rules import IgnoreRules

__all__ = ["IgnoreSources"]

_GIT_DEADLINE: Final = 10.0  # seconds one git query may take before its answer is done without
_GIT_INDEX: Final = ".git/index"

_Signature = tuple[int, int, int, int] | None


def _signature(path: str) -> _Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


async def _kill(process: trio.Process) -> None:
    # A read-only query takes no lock: past its deadline its whole session (git and anything it
    # started, which would hold the output pipe open) is killed outright, so a stuck git never costs
    # trio's five-second SIGTERM wait on top of the deadline.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    await trio.lowlevel.checkpoint()


async def _git(root: str, *args: str) -> bytes | None:
    """Standard output of ``git args`` run in ``root``; None on a failure or past the deadline."""
    with trio.move_on_after(_GIT_DEADLINE):
        try:
            done = await trio.run_process(
                ["git", "-c", "core.quotePath=false", *args],
                cwd=root,
                env=git_env(read_only=True),
                stdin=subprocess.DEVNULL,
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                start_new_session=True,
                deliver_cancel=_kill,
            )
        except OSError:
            return None  # no git here
        return done.stdout if done.returncode == 0 else None
    return None


def _default_global() -> str | None:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return os.path.join(xdg, "git", "ignore")
    home = os.environ.get("HOME")
    return os.path.join(home, ".config", "git", "ignore") if home else None


@final
class IgnoreSources:
    """The rule files of one work tree and what changed in them since the rules were last read."""

    def __init__(
        self, root: str, exclude: str | None, global_file: str | None, index: str | None = None
    ) -> None:
        self._root = root
        self._files = tuple(p for p in (exclude, global_file) if p is not None)
        self._exclude = exclude
        self.exclude_rel: str | None = None
        """The exclude file's root-relative path when it lies in the tree (its events are seen)."""
        if exclude is not None:
            rel = os.path.relpath(exclude, root)
            if not rel.startswith("..") and not os.path.isabs(rel):
                self.exclude_rel = rel.replace(os.sep, "/")
        self._signatures = {p: _signature(p) for p in self._files}
        # An index outside the tree (a linked worktree's) is looked at on each reconcile scan.
        self._index = None if index is None or index == os.path.join(root, _GIT_INDEX) else index
        self._index_signature = None if self._index is None else _signature(self._index)
        self._reread: set[str] = set()
        self._base_stale = False
        self._tracked_stale = False
        self._forced = False

    @classmethod
    async def discover(cls, root: str) -> IgnoreSources | None:
        """The sources of the work tree at ``root``; None when ``root`` is not in one.

        Cancellation: the git processes are ended; nothing is kept.
        """
        out = await _git(
            root, "rev-parse", "--is-inside-work-tree", "--git-path", "info/exclude", "--git-path",
            "index",
        )  # fmt: skip
        lines = os.fsdecode(out or b"").splitlines()
        if len(lines) < 3 or lines[0] != "true":
            return None
        exclude, index = (os.path.join(root, line) for line in lines[1:3])
        configured = await _git(root, "config", "--path", "--get", "core.excludesFile")
        global_file = os.fsdecode(configured).rstrip("\n") if configured else None
        if global_file:
            global_file = os.path.join(root, global_file)  # "~" is expanded by --path
        else:
            global_file = _default_global()
        return cls(root, exclude, global_file, index)

    async def rules(self, fixed: IgnoreRules) -> TreeRules:
        """The rules as they are now, on top of ``fixed`` (the exclude file's directory watched).

        Cancellation: nothing is kept; call again.
        """
        tracked = await self._tracked_ignored()
        git = GitIgnores(self._root, self._read_base(), () if tracked is None else tracked)
        rel = self.exclude_rel
        return TreeRules(fixed, git, frozenset({rel.rpartition("/")[0]} if rel else ()))

    @property
    def stale(self) -> bool:
        """Whether something the rules are made of changed since they were read."""
        return bool(self._reread) or self._base_stale or self._tracked_stale or self._forced

    def note(self, rel: str) -> None:
        """``rel`` changed (created, modified, deleted or moved) in the tree."""
        if rel == _GIT_INDEX:
            self._tracked_stale = True
        elif rel == self.exclude_rel:
            self._base_stale = True
        elif rel.rpartition("/")[2] == GITIGNORE and not rel.startswith(".git/"):
            self._reread.add(rel.rpartition("/")[0])

    def reconsider(self) -> None:
        """Read everything again and judge the tree anew (a directory moved inside it, so its subtree
        is under another path; or the root came back)."""
        self._base_stale = True
        self._forced = True

    def check_files(self) -> None:
        """Look whether a rule file outside the tree (or the exclude file), or an index outside it,
        changed."""
        if any(_signature(p) != sig for p, sig in self._signatures.items()):
            self._base_stale = True
        if self._index is not None:
            signature = _signature(self._index)
            if signature != self._index_signature:
                self._index_signature = signature
                self._tracked_stale = True

    async def refresh(self, current: GitIgnores) -> GitIgnores | None:
        """The rules read again where something changed; None when they decide as ``current`` does.

        Cancellation: nothing is taken; what was stale stays stale.
        """
        reread = set(self._reread)
        base_stale, forced = self._base_stale, self._forced
        tracked = await self._tracked_ignored()
        self._reread -= reread
        self._tracked_stale = False
        self._forced = False
        base: tuple[IgnoreFile, ...] | None = None
        if base_stale:
            self._base_stale = False
            base = self._read_base()
        new = current.replaced(base=base, tracked=tracked, reread=reread)
        return new if forced or not new.same_rules(current) else None

    def _read_base(self) -> tuple[IgnoreFile, ...]:
        self._signatures = {p: _signature(p) for p in self._files}
        return tuple(read_ignore_file(p, follow=True) for p in self._files)

    async def _tracked_ignored(self) -> frozenset[str] | None:
        out = await _git(
            self._root, "ls-files", "-z", "--cached", "--ignored", "--exclude-standard"
        )
        if out is None:
            return None
        return frozenset(os.fsdecode(p) for p in out.split(b"\0") if p)
