"""Which changed paths become worklog entries: include and exclude glob patterns. Imports no trio.

Patterns use ``/``-separated, root-relative paths:

* a pattern without ``/`` matches a path's last component at any depth (``*.py``, ``Makefile``);
* a pattern with ``/`` matches the whole path from the root (``docs/*.md``; a leading ``/`` is allowed);
* a pattern ending in ``/`` names a directory: everything under a directory of that name, at any depth
  when the rest has no ``/`` (``node_modules/``), else from the root (``build/out/``);
* ``*`` matches within one component, ``**`` any number of components, ``?`` one character, ``[...]`` a
  character class.

A path is kept when it matches some include pattern and no exclude pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from .._core._errors import InvalidArgumentError

__all__ = ["DEFAULT_EXCLUDE", "DEFAULT_INCLUDE", "PathFilter", "compile_pattern"]

_SOURCE: Final = (
    "*.py", "*.pyi", "*.js", "*.mjs", "*.cjs", "*.ts", "*.tsx", "*.jsx", "*.go", "*.rs", "*.java",
    "*.kt", "*.kts", "*.scala", "*.c", "*.h", "*.cc", "*.cpp", "*.hpp", "*.cs", "*.rb", "*.php",
    "*.swift", "*.m", "*.sh", "*.bash", "*.zsh", "*.sql", "*.html", "*.css", "*.scss", "*.vue",
    "*.svelte", "*.lua", "*.ex", "*.exs", "*.erl", "*.hs", "*.ml", "*.clj", "*.dart", "*.r", "*.R",
    "*.jl", "*.toml", "*.yaml", "*.yml", "*.json", "*.ini", "*.cfg", "*.proto", "*.graphql",
    "*.tf", "Makefile", "*.mk", "Dockerfile", "CMakeLists.txt",
)  # fmt: skip
_DOCS: Final = ("*.md", "*.markdown", "*.rst", "*.txt", "*.adoc", "*.org")
_PLANNING: Final = (
    "backlog/", "B-*", "*PRD*", "*prd*", "prd/", "tasks/", "*tasks*", "*TASKS*", "TODO*", "*.todo",
)  # fmt: skip

#: What becomes a worklog entry by default: source, docs, backlog, PRD and task-list files.
DEFAULT_INCLUDE: Final[tuple[str, ...]] = (*_SOURCE, *_DOCS, *_PLANNING)

#: What never does by default: version-control internals, dependencies, build output, caches, editor
#: droppings, and the scribe's own mirror directory.
DEFAULT_EXCLUDE: Final[tuple[str, ...]] = (
    ".git/", ".hg/", ".svn/", "node_modules/", ".venv/", "venv/", "__pycache__/", ".mypy_cache/",
    ".pytest_cache/", ".ruff_cache/", ".tox/", ".nox/", "dist/", "build/", "target/", ".idea/",
    ".vscode/", ".scribe/", "*.pyc", "*.pyo", "*.swp", "*.swo", "*.swx", "*~", ".#*", "#*#",
    "*.tmp", ".*.tmp", ".DS_Store", "*.egg-info/",
)  # fmt: skip

_MAX_PATTERN = 1000


def _translate(glob: str) -> str:
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if glob.startswith("**", i):
                before_ok = i == 0 or glob[i - 1] == "/"
                after = i + 2
                if before_ok and after < n and glob[after] == "/":
                    out.append("(?:.*/)?")
                    i = after + 1
                    continue
                if before_ok and after == n:
                    out.append(".*")
                    i = after
                    continue
                out.append("[^/]*")
                i = after
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = glob.find("]", i + 2 if i + 1 < n and glob[i + 1] in "!^" else i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : j]
                negate = body[:1] in ("!", "^")
                if negate:
                    body = body[1:]
                body = body.replace("\\", "\\\\")
                out.append(f"[^/{body}]" if negate else f"[{body}]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression a glob pattern stands for (see the module docstring).

    Raises:
        InvalidArgumentError: the pattern is empty, too long, not a string, or not a valid glob.
    """
    if not isinstance(pattern, str):
        raise InvalidArgumentError(f"a pattern must be a string, not {type(pattern).__name__}")
    p = pattern.strip()
    if not p or p == "/" or len(p) > _MAX_PATTERN or "\x00" in p:
        raise InvalidArgumentError(f"invalid path pattern {pattern!r}")
    directory = p.endswith("/")
    if directory:
        p = p.rstrip("/")
    anchored = "/" in p
    p = p.lstrip("/")
    if not p:
        raise InvalidArgumentError(f"invalid path pattern {pattern!r}")
    body = _translate(p)
    prefix = "" if anchored else "(?:.*/)?"
    suffix = "/.*" if directory else ""
    try:
        return re.compile(f"{prefix}{body}{suffix}", re.DOTALL)
    except re.error as exc:
        raise InvalidArgumentError(f"invalid path pattern {pattern!r}: {exc}") from None


def _compile_all(patterns: Iterable[str], what: str) -> tuple[re.Pattern[str], ...]:
    if isinstance(patterns, str):
        raise InvalidArgumentError(f"{what} must be a collection of patterns, not one string")
    return tuple(compile_pattern(p) for p in patterns)


@dataclass(frozen=True, slots=True)
class PathFilter:
    """Include and exclude patterns; :meth:`matches` says whether a path becomes a worklog entry.

    Attributes:
        include: patterns a path must match one of.
        exclude: patterns a path must match none of.
    """

    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    _inc: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)
    _exc: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for what in ("include", "exclude"):
            if isinstance(getattr(self, what), str):
                raise InvalidArgumentError(
                    f"{what} must be a collection of patterns, not one string"
                )
        object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "exclude", tuple(self.exclude))
        object.__setattr__(self, "_inc", _compile_all(self.include, "include"))
        object.__setattr__(self, "_exc", _compile_all(self.exclude, "exclude"))

    def with_exclude(self, *patterns: str) -> PathFilter:
        """A filter that also excludes ``patterns``."""
        return PathFilter(self.include, (*self.exclude, *patterns))

    def excluded(self, path: str) -> bool:
        """Whether an exclude pattern matches ``path``."""
        p = path.lstrip("/")
        return any(rx.fullmatch(p) for rx in self._exc)

    def matches(self, path: str) -> bool:
        """Whether ``path`` (root-relative, ``/``-separated) is included and not excluded."""
        p = path.lstrip("/")
        if not p:
            return False
        if not any(rx.fullmatch(p) for rx in self._inc):
            return False
        return not any(rx.fullmatch(p) for rx in self._exc)
