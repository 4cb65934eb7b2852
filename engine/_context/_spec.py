"""What a context source is (:class:`SourceSpec`) and what it answers (:class:`SourceResult`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .._core._errors import InvalidArgumentError, ScribeError
from .._core._gather import SourceStatus
from .._scribe._rules import Aspect

if TYPE_CHECKING:
    from ._sources import ContextTarget

__all__ = ["FULL", "MAX_REFRESH_PATHS", "ContextError", "SourceResult", "SourceSpec"]


class ContextError(ScribeError):
    """Root of the context provider's errors."""


Fetch = Callable[["ContextTarget"], Awaitable[Any]]
Refresh = Callable[["ContextTarget", Any, frozenset[str]], Awaitable[Any]]

#: What a :attr:`SourceSpec.refresh` returns when only a full fetch can answer.
FULL: Final[Any] = object()

#: The most changed paths an incremental refresh takes; beyond, the source is fetched in full.
MAX_REFRESH_PATHS: Final = 64


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One context source.

    Attributes:
        name: its name in a :class:`~engine.Context`.
        fetch: gathers its JSON-ready value for a session.
        depends_on: the aspects whose change dirties it.
        timeout: its deadline in seconds.
        max_age: seconds a cached value stays good without being dirtied (None: until dirtied).
        path_scoped: also dirtied when a changed work-tree path is one of the target's chosen files,
            and only then by a tree change.
        newest_last: its value is a list ordered oldest first, so a role's limit keeps the last items
            (else the first).
        refresh: brings a cached value up to date after a change of known work-tree paths only
            (``refresh(target, previous_value, paths)``), cheaper than a full fetch; it may return
            :data:`FULL` to ask for the full fetch instead.
    """

    name: str
    fetch: Fetch
    depends_on: frozenset[Aspect]
    timeout: float = 2.0
    max_age: float | None = None
    path_scoped: bool = False
    newest_last: bool = False
    refresh: Refresh | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidArgumentError(f"invalid source name {self.name!r}")
        if not isinstance(self.timeout, int | float) or not self.timeout > 0:
            raise InvalidArgumentError(f"source timeout must be positive, not {self.timeout!r}")
        if self.max_age is not None and not self.max_age > 0:
            raise InvalidArgumentError("max_age must be positive or None")
        object.__setattr__(self, "depends_on", frozenset(Aspect(a) for a in self.depends_on))


@dataclass(frozen=True, slots=True)
class SourceResult:
    """One source's answer.

    Attributes:
        name: the source.
        status: ok, error or timeout.
        value: its JSON-ready value (None unless ok).
        error: what went wrong (``Type: message``), unless ok.
        elapsed: seconds the fetch took (0 when served from memory).
        fetched_at: when the value was fetched (seconds since the epoch).
        cached: served from memory without running the source.
    """

    name: str
    status: SourceStatus
    value: Any = None
    error: str | None = None
    elapsed: float = 0.0
    fetched_at: float = 0.0
    cached: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "status": self.status.value,
            "value": self.value,
            "error": self.error,
            "elapsed": self.elapsed,
            "fetched_at": self.fetched_at,
            "cached": self.cached,
        }
