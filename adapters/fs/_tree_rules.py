"""The rules a watched tree is walked by: the watcher's own :class:`IgnoreRules`, then the work tree's
git ignore rules (:class:`GitIgnores`) outside ``.git``."""

from __future__ import annotations

from typing import final

from ._gitignore import GitIgnores
from ._watch_rules import IgnoreRules

__all__ = ["TreeRules"]


def _in_git_dir(rel: str) -> bool:
    return rel == ".git" or rel.startswith(".git/")


@final
class TreeRules:
    """Which directories are watched and which paths are reported.

    Args:
        fixed: the watcher's rules (always applied; git's rules cannot re-include what they ignore).
        git: the work tree's ignore rules, or None outside a work tree.
        git_dirs: directories in ``.git`` watched for the rules' sake (``.git/info``), never reported.
    """

    def __init__(
        self, fixed: IgnoreRules, git: GitIgnores | None, git_dirs: frozenset[str] = frozenset()
    ) -> None:
        self.fixed = fixed
        self.git = git
        self._git_dirs = git_dirs

    def with_git(self, git: GitIgnores) -> TreeRules:
        """The same rules with other git ignore rules."""
        return TreeRules(self.fixed, git, self._git_dirs)

    def watch_dir(self, rel: str) -> bool:
        """Whether the directory ``rel`` ("" is the root) gets a watch (and is scanned)."""
        if rel in self._git_dirs:
            return True
        if not self.fixed.watch_dir(rel):
            return False
        return self.git is None or rel == "" or _in_git_dir(rel) or self.git.visible(rel, True)

    def report(self, rel: str, is_dir: bool) -> bool:
        """Whether a change to ``rel`` is reported."""
        if not self.fixed.report(rel, is_dir):
            return False
        return self.git is None or _in_git_dir(rel) or self.git.visible(rel, is_dir)

    def tracked(self, rel: str, is_dir: bool) -> bool:
        """Whether the watcher keeps ``rel`` in its snapshot (reported, or a watched directory)."""
        return self.report(rel, is_dir) or (is_dir and self.watch_dir(rel))

    def forget(self, rel: str) -> None:
        """The directory ``rel`` went away or came back: rule files read at or below it are stale."""
        if self.git is not None:
            self.git.forget(rel)
