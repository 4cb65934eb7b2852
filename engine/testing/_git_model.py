"""The pure side of :class:`FakeGit`: trees compared as git compares them, line counts, ignore
rules, refs and commit messages. Imports no trio."""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from .._core._errors import InvalidArgumentError
from .._ports._git_history import LogEntry

__all__ = [
    "ABSENT_MODE",
    "FILE_MODE",
    "REF",
    "STEP",
    "ZERO_OID",
    "Commit",
    "Tree",
    "blob_oid",
    "change_letter",
    "check_paths",
    "compare",
    "ignore_rules",
    "in_paths",
    "is_ignored",
    "line_counts",
    "split_message",
]

ZERO_OID: Final = "0" * 40
ABSENT_MODE: Final = "000000"
FILE_MODE: Final = "100644"

Tree = dict[str, bytes]

REF: Final = re.compile(r"(?P<base>[^~^:]+)(?P<steps>(?:~\d*|\^)*)")
STEP: Final = re.compile(r"~(\d*)|\^")


def blob_oid(data: bytes) -> str:
    """The object id git gives a blob of ``data`` (so fake and real ids of one file agree)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class Commit:
    entry: LogEntry
    tree: Tree


def check_paths(paths: Sequence[str] | None) -> tuple[str, ...] | None:
    if paths is None:
        return None
    if isinstance(paths, str):
        raise InvalidArgumentError("paths must be a sequence of paths, not one string")
    for p in paths:
        if not isinstance(p, str) or not p or "\0" in p:
            raise InvalidArgumentError(f"invalid path {p!r}")
        pure = PurePosixPath(p)
        if pure.is_absolute() or ".." in pure.parts:
            raise InvalidArgumentError(f"a path must be root-relative inside the tree: {p!r}")
    return tuple(p.rstrip("/") for p in paths)


def in_paths(path: str, paths: tuple[str, ...] | None) -> bool:
    return paths is None or any(path == p or path.startswith(p + "/") for p in paths)


def line_counts(old: bytes, new: bytes) -> tuple[int | None, int | None]:
    if b"\0" in old or b"\0" in new:
        return None, None
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    added = deleted = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            deleted += i2 - i1
            added += j2 - j1
    return added, deleted


def compare(old: Tree, new: Tree, paths: tuple[str, ...] | None) -> list[tuple[str, str]]:
    """(status letter, path) for every path that differs, sorted by path (no rename detection)."""
    out = []
    for path in sorted(old.keys() | new.keys()):
        if not in_paths(path, paths):
            continue
        letter = change_letter(old, new, path)
        if letter != ".":
            out.append((letter, path))
    return out


def change_letter(old: Tree, new: Tree, path: str) -> str:
    """How ``path`` changed from ``old`` to ``new``: ``A``, ``D``, ``M`` or ``.`` (unchanged)."""
    if path not in old:
        return "A" if path in new else "."
    if path not in new:
        return "D"
    return "M" if old[path] != new[path] else "."


def ignore_rules(work: Tree) -> list[tuple[str, str]]:
    """(directory, pattern) of every ``.gitignore`` line in the work tree (no negation)."""
    rules = []
    for path, data in work.items():
        if path == ".gitignore" or path.endswith("/.gitignore"):
            base = path[: -len(".gitignore")]
            for line in data.decode("utf-8", "replace").splitlines():
                line = line.strip()
                if line and not line.startswith(("#", "!")):
                    rules.append((base, line))
    return rules


def is_ignored(path: str, rules: list[tuple[str, str]]) -> bool:
    for base, pattern in rules:
        if not path.startswith(base):
            continue
        rel = path[len(base) :]
        parts = rel.split("/")
        dir_only = pattern.endswith("/")
        pat = pattern.strip("/")
        if "/" in pattern.rstrip("/"):
            candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + (not dir_only))]
        else:
            candidates = parts[:-1] if dir_only else parts
        if any(fnmatch.fnmatchcase(c, pat) for c in candidates):
            return True
    return False


def split_message(message: str) -> tuple[str, str]:
    lines = [line.rstrip() for line in message.strip().splitlines()]
    blank = lines.index("") if "" in lines else len(lines)
    return " ".join(lines[:blank]), "\n".join(lines[blank:]).strip("\n")
