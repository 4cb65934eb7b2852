"""Which paths a watcher watches and reports: ignore rules, with git's interesting files kept.

Pure functions of root-relative, ``/``-separated paths; no I/O.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

__all__ = ["DEFAULT_IGNORED_NAMES", "DEFAULT_IGNORE_GLOBS", "GIT_REPORTED", "IgnoreRules"]

#: Directory or file names ignored anywhere in the tree.
DEFAULT_IGNORED_NAMES: Final = frozenset({"node_modules", "__pycache__"})
#: Globs ignored by default: the scoped file system's temporary files.
DEFAULT_IGNORE_GLOBS: Final = ("*.scribe-tmp",)
#: Files inside ``.git`` that reveal a commit, a branch switch, a merge/rebase or a push/fetch, and
#: the index (something was staged or unstaged).
GIT_REPORTED: Final = frozenset({".git/HEAD", ".git/ORIG_HEAD", ".git/packed-refs", ".git/index"})
_GIT_REF_DIRS: Final = (".git/refs/heads", ".git/refs/remotes")


def _compile(patterns: Iterable[str]) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    """(matcher of one path component, matcher of a whole path or a prefix of it)."""
    names: list[str] = []
    paths: list[str] = []
    for raw in patterns:
        pattern = raw.strip().rstrip("/")
        if not pattern:
            continue
        if "/" in pattern.lstrip("/"):
            paths.append(fnmatch.translate(pattern.lstrip("/")))
        else:
            names.append(fnmatch.translate(pattern.lstrip("/")))
    name_re = re.compile("|".join(names)) if names else None
    path_re = re.compile("|".join(paths)) if paths else None
    return name_re, path_re


@dataclass(frozen=True)
class IgnoreRules:
    """Ignore rules for a watched tree.

    Attributes:
        names: component names ignored anywhere (a directory's whole subtree goes).
        globs: ``fnmatch`` patterns. One without ``/`` matches any single component (``*.log``,
            ``build``); one with ``/`` matches a root-relative path or any of its parent
            directories (``docs/_build``, ``src/*/generated``).
        report_git: report ``.git/HEAD``, ``ORIG_HEAD``, ``packed-refs``, ``index`` and the files
            under ``refs/heads`` and ``refs/remotes``; everything else in ``.git`` is ignored (lock
            files included: git renames ``index.lock`` over ``index``, reported as a change of
            ``index``).
    """

    names: frozenset[str] = DEFAULT_IGNORED_NAMES
    globs: tuple[str, ...] = DEFAULT_IGNORE_GLOBS
    report_git: bool = True
    _name_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _path_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        name_re, path_re = _compile(self.globs)
        object.__setattr__(self, "_name_re", name_re)
        object.__setattr__(self, "_path_re", path_re)

    @classmethod
    def with_extra(cls, globs: Iterable[str] = (), *, defaults: bool = True) -> IgnoreRules:
        """The default rules plus ``globs`` (or only ``globs`` without ``defaults``)."""
        extra = tuple(globs)
        if defaults:
            return cls(globs=DEFAULT_IGNORE_GLOBS + extra)
        return cls(names=frozenset(), globs=extra)

    def _ignored(self, rel: str) -> bool:
        parts = rel.split("/")
        if self.names and not self.names.isdisjoint(parts):
            return True
        if self._name_re is not None and any(self._name_re.match(p) for p in parts):
            return True
        if self._path_re is not None:
            prefix = ""
            for part in parts:
                prefix = f"{prefix}/{part}" if prefix else part
                if self._path_re.match(prefix):
                    return True
        return False

    def watch_dir(self, rel: str) -> bool:
        """Whether the directory ``rel`` ("" is the root) gets a watch (and is scanned)."""
        if rel == "":
            return True
        if rel == ".git" or rel.startswith(".git/"):
            if not self.report_git:
                return False
            return rel in (".git", ".git/refs") or any(
                rel == d or rel.startswith(d + "/") for d in _GIT_REF_DIRS
            )
        return not self._ignored(rel)

    def report(self, rel: str, is_dir: bool) -> bool:
        """Whether a change to ``rel`` is reported."""
        if rel == "":
            return False
        if rel == ".git" or rel.startswith(".git/"):
            if not self.report_git or is_dir or rel.endswith(".lock"):
                return False
            return rel in GIT_REPORTED or any(rel.startswith(d + "/") for d in _GIT_REF_DIRS)
        return not self._ignored(rel)

    def tracked(self, rel: str, is_dir: bool) -> bool:
        """Whether the watcher keeps ``rel`` in its snapshot (reported, or a watched directory)."""
        return self.report(rel, is_dir) or (is_dir and self.watch_dir(rel))
