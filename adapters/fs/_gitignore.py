"""A work tree's git ignore rules as git applies them: ``.gitignore`` files at every level, the
repository's exclude file and the user's global excludes file; tracked files stay visible.

Patterns are parsed and matched by :class:`pathspec.GitIgnoreSpec`. What this module adds is git's
way of walking: a pattern without a ``/`` is matched against a path's last component (its verdicts are
remembered by name), and precedence: the ``.gitignore`` of a deeper directory decides before a shallower one (the last matching
line of a file decides within it), then ``.git/info/exclude``, then the global file; a path under an
ignored directory is ignored whatever its own patterns say. A tracked file is never ignored, nor are the
directories on its way.

Each directory's ``.gitignore`` is read the first time something in it is looked at, and kept until
:meth:`GitIgnores.forget` (the directory went away or came back) or a reload. Only regular files are
read (:func:`._regular.open_regular`; never through a symbolic link in the work tree, as git), up to
:data:`MAX_IGNORE_FILE` bytes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Final, final

from pathspec import GitIgnoreSpec

from engine import FileSystemError

from ._regular import open_regular

__all__ = ["GitIgnores", "IgnoreFile", "read_ignore_file"]

_log = logging.getLogger(__name__)

#: The most of one ignore file that is read; lines past it are not.
MAX_IGNORE_FILE: Final = 1024 * 1024

_MEMO: Final = 65536  # names remembered per ignore file

#: The file name git reads in every directory.
GITIGNORE: Final = ".gitignore"

IgnoreFile = tuple[str, ...]
"""The lines of one ignore file (empty: none there)."""


def read_ignore_file(path: str, *, follow: bool) -> IgnoreFile:
    """The lines of the ignore file at ``path``; none when it is missing, not a regular file or
    unreadable. ``follow``: whether a symbolic link is followed (never for a work tree's files)."""
    try:
        fd = open_regular(os.path.realpath(path) if follow else path, os.O_RDONLY)
    except (OSError, FileSystemError) as exc:
        # missing, a FIFO or device, a symbolic link, unreadable: no rules from there
        if not isinstance(exc, FileNotFoundError):
            _log.debug("ignore file %s not read: %s", path, exc)
        return ()
    try:
        data = os.read(fd, MAX_IGNORE_FILE)
    except OSError as exc:
        _log.debug("ignore file %s not read: %s", path, exc)
        return ()
    finally:
        os.close(fd)
    if len(data) >= MAX_IGNORE_FILE:
        data = data[: data.rfind(b"\n") + 1]  # no half line
    return tuple(os.fsdecode(data).splitlines())


def _pattern(line: str) -> GitIgnoreSpec | None:
    """The line alone as a spec of one pattern; None for a comment, a blank or a bad line."""
    try:
        spec = GitIgnoreSpec.from_lines([line])
    except ValueError:
        return None  # git skips a line it cannot use; so do we
    return spec if len(spec.patterns) == 1 and spec.patterns[0].include is not None else None


def _names_only(line: str) -> bool:
    """Whether a line's pattern has no ``/`` but a trailing one: git matches it against the last
    component of a path (at any depth), so its verdict depends on the name alone."""
    core = line[1:] if line.startswith("!") else line
    return "/" not in core.rstrip().rstrip("/")


@final
class _Level:
    """The patterns of one ignore file; :meth:`decide` says what its last matching line says."""

    def __init__(self, lines: IgnoreFile) -> None:
        names: list[tuple[int, GitIgnoreSpec]] = []
        paths: list[tuple[int, GitIgnoreSpec]] = []
        for index, line in enumerate(lines):
            pattern = _pattern(line)
            if pattern is not None:
                (names if _names_only(line) else paths).append((index, pattern))
        self._name_index = [i for i, _ in names]
        self._path_index = [i for i, _ in paths]
        self._names = GitIgnoreSpec([p.patterns[0] for _, p in names]) if names else None
        self._paths = GitIgnoreSpec([p.patterns[0] for _, p in paths]) if paths else None
        self._memo: dict[tuple[str, bool], tuple[int, bool] | None] = {}

    def __bool__(self) -> bool:
        return self._names is not None or self._paths is not None

    def decide(self, sub: str, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included, None: no line matches ``sub`` (relative to the file's
        directory)."""
        by_name: tuple[int, bool] | None = None
        if self._names is not None:
            name = sub.rpartition("/")[2]
            key = (name, is_dir)
            if key in self._memo:
                by_name = self._memo[key]
            else:
                found = self._names.check_file(name + "/" if is_dir else name)
                if found.include is not None and found.index is not None:
                    by_name = (self._name_index[found.index], found.include)
                if len(self._memo) >= _MEMO:
                    self._memo.clear()
                self._memo[key] = by_name
        if self._paths is not None:
            found = self._paths.check_file(sub + "/" if is_dir else sub)
            if found.include is not None and found.index is not None:
                index = self._path_index[found.index]
                if by_name is None or index > by_name[0]:
                    return found.include
        return None if by_name is None else by_name[1]


def _level(lines: IgnoreFile) -> _Level | None:
    level = _Level(lines) if lines else None
    return level if level else None


def _parent(rel: str) -> str:
    return rel.rpartition("/")[0]


def _at_or_under(rel: str, top: str) -> bool:
    return top == "" or rel == top or rel.startswith(top + "/")


@final
class GitIgnores:
    """The ignore rules of the work tree at ``root`` (paths are root-relative, ``/``-separated).

    Args:
        root: the work tree's top directory.
        base: the exclude file's and then the global file's lines (lowest precedence last).
        tracked: tracked files that the rules would ignore (they, and the directories holding them,
            stay visible).
        files: the ``.gitignore`` lines already read, by directory (kept, not read again).
    """

    def __init__(
        self,
        root: str,
        base: Iterable[IgnoreFile] = (),
        tracked: Iterable[str] = (),
        files: Mapping[str, IgnoreFile] | None = None,
        *,
        _parsed: Mapping[str, _Level | None] | None = None,
    ) -> None:
        self._root = root
        self._base_lines = tuple(base)
        self._base = tuple(s for s in map(_level, self._base_lines) if s is not None)
        self._tracked = frozenset(tracked)
        dirs: set[str] = set()
        for path in self._tracked:
            parent = _parent(path)
            while parent and parent not in dirs:
                dirs.add(parent)
                parent = _parent(parent)
        self._tracked_dirs = frozenset(dirs)
        self._lines: dict[str, IgnoreFile] = dict(files or {})
        parsed = _parsed or {}
        self._specs: dict[str, _Level | None] = {
            d: parsed[d] if d in parsed else _level(v) for d, v in self._lines.items()
        }
        self._dirs: dict[str, bool] = {}  # directory -> ignored (itself or through a parent)
        self._last: tuple[tuple[str, bool] | None, bool] = (None, False)

    @property
    def tracked(self) -> frozenset[str]:
        """Tracked files the rules would otherwise ignore."""
        return self._tracked

    @property
    def base(self) -> tuple[IgnoreFile, ...]:
        """The exclude file's and the global file's lines."""
        return self._base_lines

    def same_rules(self, other: GitIgnores) -> bool:
        """Whether ``other`` decides every path as this does (same files read, same tracked set)."""
        return (self._base_lines, self._tracked) == (other._base_lines, other._tracked) and all(
            other._lines.get(d, lines) == lines for d, lines in self._lines.items()
        )

    def replaced(
        self,
        *,
        base: Iterable[IgnoreFile] | None = None,
        tracked: Iterable[str] | None = None,
        reread: Iterable[str] = (),
    ) -> GitIgnores:
        """A copy with other base files, another tracked set, and the ``.gitignore`` files of the
        directories ``reread`` read again."""
        again = set(reread)
        files = {d: lines for d, lines in self._lines.items() if d not in again}
        for d in again:
            files[d] = self._read(d)
        return GitIgnores(
            self._root,
            self._base_lines if base is None else base,
            self._tracked if tracked is None else tracked,
            files,
            _parsed={d: level for d, level in self._specs.items() if d not in again},
        )

    def forget(self, rel: str) -> None:
        """The directory ``rel`` went away or came back: what was read at or below it is stale."""
        if rel not in self._lines:
            return  # nothing below it was looked at either
        for d in [d for d in self._lines if _at_or_under(d, rel)]:
            del self._lines[d]
            del self._specs[d]
        for d in [d for d in self._dirs if d != rel and _at_or_under(d, rel)]:
            del self._dirs[d]
        self._last = (None, False)

    def visible(self, rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` (never ``""`` nor in ``.git``) is seen: not ignored, or tracked, or a
        directory holding a tracked file."""
        if self._last[0] == (rel, is_dir):
            return self._last[1]  # the same question again (tracked, then reported)
        seen = self._visible(rel, is_dir)
        self._last = ((rel, is_dir), seen)
        return seen

    def _visible(self, rel: str, is_dir: bool) -> bool:
        if is_dir:
            return rel in self._tracked_dirs or not self._dir_ignored(rel)
        if rel in self._tracked:
            return True
        parent = _parent(rel)
        return not (parent and self._dir_ignored(parent)) and not self._matched(rel, False)

    def _dir_ignored(self, rel: str) -> bool:
        known = self._dirs.get(rel)
        if known is None:
            parent = _parent(rel)
            known = bool(parent and self._dir_ignored(parent)) or self._matched(rel, True)
            self._dirs[rel] = known
        return known

    def _matched(self, rel: str, is_dir: bool) -> bool:
        d = _parent(rel)
        while True:
            sub = rel[len(d) + 1 :] if d else rel
            level = self._level(d)
            decision = None if level is None else level.decide(sub, is_dir)
            if decision is not None:
                return decision
            if not d:
                break
            d = _parent(d)
        for base in self._base:
            decision = base.decide(rel, is_dir)
            if decision is not None:
                return decision
        return False

    def _level(self, d: str) -> _Level | None:
        if d not in self._specs:
            self._lines[d] = self._read(d)
            self._specs[d] = _level(self._lines[d])
        return self._specs[d]

    def _read(self, d: str) -> IgnoreFile:
        path = os.path.join(self._root, d, GITIGNORE) if d else os.path.join(self._root, GITIGNORE)
        return read_ignore_file(path, follow=False)
