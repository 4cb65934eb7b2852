"""Paths given to git as literal, root-anchored pathspecs (no glob, any character)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Final

from engine import InvalidArgumentError

__all__ = ["NOTHING", "pathspecs"]

#: A pathspec that matches nothing: what an empty ``paths`` stands for.
NOTHING: Final = ":(exclude)*"


def pathspecs(paths: Sequence[str] | None) -> list[str]:
    """``paths`` as literal, root-anchored pathspecs (``[]`` for None: the whole tree).

    Raises:
        InvalidArgumentError: a path is not a root-relative path inside the tree.
    """
    if paths is None:
        return []
    if isinstance(paths, str):
        raise InvalidArgumentError("paths must be a sequence of paths, not one string")
    specs = []
    for p in paths:
        if not isinstance(p, str) or not p or "\0" in p:
            raise InvalidArgumentError(f"invalid path {p!r}")
        pure = PurePosixPath(p)
        if pure.is_absolute() or ".." in pure.parts:
            raise InvalidArgumentError(f"a path must be root-relative inside the tree: {p!r}")
        specs.append(f":(top,literal){p}")
    return specs or [NOTHING]
