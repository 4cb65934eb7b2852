"""Roles: which context sources each kind of agent sees, how much of the long ones, which files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = ["DEFAULT_ROLES", "RoleProfile"]


@dataclass(frozen=True, slots=True)
class RoleProfile:
    """What one role sees: which sources and how much of the long ones.

    Attributes:
        sources: the source names, in the order shown.
        limits: how many items of a list-valued source the role keeps (``{"log": 10}``).
        files: the chosen files (root-relative; ``{backlog}`` stands for the session's backlog id).
    """

    sources: tuple[str, ...]
    limits: Mapping[str, int] = field(default_factory=dict)
    files: tuple[str, ...] = ()

    def files_for(self, backlog_id: str | None) -> tuple[str, ...]:
        """The chosen files for a session with this backlog id (a ``{backlog}`` file is left out
        when there is none)."""
        out: list[str] = []
        for f in self.files:
            if "{backlog}" in f:
                if not backlog_id:
                    continue
                f = f.replace("{backlog}", backlog_id)
            out.append(f)
        return tuple(out)


_PLANNING_FILES: Final = (
    "PRD.md",
    "docs/PRD.md",
    "backlog/{backlog}.md",
    "TASKS.md",
    "tasks.md",
    "TODO.md",
)

#: What each role sees.
DEFAULT_ROLES: Final[Mapping[str, RoleProfile]] = {
    "planner": RoleProfile(
        ("branch", "log", "summary", "worklog", "related", "files"),
        {"log": 20, "worklog": 20},
        _PLANNING_FILES,
    ),
    "implementer": RoleProfile(
        ("branch", "status", "diff", "log", "summary", "worklog", "files"),
        {"log": 10, "worklog": 30},
        ("backlog/{backlog}.md", "TASKS.md", "tasks.md", "TODO.md"),
    ),
    "coder": RoleProfile(
        ("branch", "status", "diff", "worklog", "files"),
        {"worklog": 50},
        ("backlog/{backlog}.md", "TODO.md"),
    ),
    "researcher": RoleProfile(
        ("branch", "log", "summary", "related", "files"),
        {"log": 10},
        ("README.md", "docs/README.md", "PRD.md", "docs/PRD.md"),
    ),
    "reviewer": RoleProfile(
        ("branch", "status", "diff", "log", "summary", "worklog", "related"),
        {"log": 20, "worklog": 30},
        (),
    ),
}
