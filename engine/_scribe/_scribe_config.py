"""The scribe's configuration, and the checks on what a session is started with (idle timeout, pinned
files, the mirror path template)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._core._errors import InvalidArgumentError
from .._core._privacy import Privacy
from .._core._supervisor import RestartPolicy
from .._ports._session_store import SessionRecord
from ._rules import DEFAULT_BACKLOG_PATTERN, EndRules, backlog_id_from_branch
from ._worklog_filter import PathFilter

__all__ = ["ScribeConfig", "check_file", "check_mirror", "check_timeout", "mirror_path"]


@dataclass(frozen=True, slots=True)
class ScribeConfig:
    """How the scribe captures.

    Attributes:
        path_filter: which changed files become entries.
        end_rules: when sessions end by themselves (``idle_timeout`` is the default of sessions
            started without one).
        backlog_pattern: the regular expression that finds a backlog id in a branch name.
        mirror: a root-relative path template for a markdown mirror of each worklog in its work tree
            (``{session}`` and ``{backlog}`` are filled in), or None for no mirror.
        mirror_delay: seconds the mirror waits to coalesce entries before it is rewritten.
        stop_grace: seconds a stopping session's tasks get to finish.
        max_commits: the most commit entries one HEAD move makes.
        watcher_options: keyword arguments for the watcher factory (``quiet``, ``cap`` ...).
        restart_policy: how a crashed watcher is restarted.
        max_backlog: entries a session carries in memory across a store failure; past it they
            live in the journal alone (every carried entry is written ahead to the journal).
        privacy: how every entry's payload and a session's description and tags are scrubbed
            before they are stored or published (default: ``<private>`` text removed, secrets
            redacted).
    """

    path_filter: PathFilter = field(default_factory=PathFilter)
    end_rules: EndRules = field(default_factory=EndRules)
    backlog_pattern: str = DEFAULT_BACKLOG_PATTERN
    mirror: str | None = None
    mirror_delay: float = 0.5
    stop_grace: float = 5.0
    max_commits: int = 50
    watcher_options: Mapping[str, Any] = field(default_factory=dict)
    restart_policy: RestartPolicy = field(
        default_factory=lambda: RestartPolicy(
            max_restarts=5, period=60.0, backoff_initial=0.2, backoff_max=5.0
        )
    )
    max_backlog: int = 1000
    privacy: Privacy = field(default_factory=Privacy)

    def __post_init__(self) -> None:
        if not isinstance(self.path_filter, PathFilter):
            raise InvalidArgumentError("path_filter must be a PathFilter")
        if not isinstance(self.end_rules, EndRules):
            raise InvalidArgumentError("end_rules must be EndRules")
        if not isinstance(self.privacy, Privacy):
            raise InvalidArgumentError("privacy must be a Privacy")
        backlog_id_from_branch("x", self.backlog_pattern)
        if self.mirror is not None:
            check_mirror(self.mirror)
        for what in ("mirror_delay", "stop_grace"):
            v = getattr(self, what)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0:
                raise InvalidArgumentError(f"{what} must be a number >= 0, not {v!r}")
        if isinstance(self.max_commits, bool) or not isinstance(self.max_commits, int):
            raise InvalidArgumentError("max_commits must be an int")
        if self.max_commits < 1:
            raise InvalidArgumentError("max_commits must be >= 1")
        m = self.max_backlog
        if isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 1_000_000:
            raise InvalidArgumentError(f"max_backlog must be an int in 1..1000000, not {m!r}")


def check_mirror(template: str) -> str:
    """Check a mirror path template: a relative path that stays inside the work tree."""
    if not isinstance(template, str) or not template.strip():
        raise InvalidArgumentError(f"invalid mirror path {template!r}")
    p = Path(template)
    if p.is_absolute() or ".." in p.parts or p.parts[:1] == (".git",):
        raise InvalidArgumentError(f"the mirror path must stay inside the work tree: {template!r}")
    return template


def mirror_path(template: str, record: SessionRecord) -> str:
    """Fill ``{session}`` and ``{backlog}`` of a mirror path template in for one session."""
    return template.replace("{session}", record.id).replace(
        "{backlog}", record.backlog_id or record.id
    )


def check_timeout(value: float | None) -> float | None:
    """Check an idle timeout: None (never) or a finite number of seconds > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"idle timeout must be a number, not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgumentError(f"idle timeout must be positive, not {value!r}")
    return float(value)


def check_file(path: object) -> str:
    """Check a pinned file: a root-relative path inside the work tree; returned in POSIX form."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidArgumentError(f"invalid file {path!r}")
    p = Path(path.strip())
    if p.is_absolute() or ".." in p.parts:
        raise InvalidArgumentError(f"a chosen file must be a path inside the work tree: {path!r}")
    return p.as_posix()
