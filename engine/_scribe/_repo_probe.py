"""Probing a session's repository: its state compared with the last one seen, turned into branch-switch,
commit and push entries, the end rule they trigger, and the aspects found changed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._ports._git import Git
from .._ports._git_errors import GitError
from .._ports._worklog_records import EndReason, EntryKind
from ._rules import Aspect, EndRules, RepoState, observe

__all__ = ["Probe", "probe_repo"]


@dataclass(frozen=True, slots=True)
class Probe:
    """What one probe found.

    Attributes:
        state: the repository's state now.
        items: the ``(kind, payload)`` entries to make, in order.
        end: the end rule triggered, if any.
        touched: the aspects found changed.
    """

    state: RepoState
    items: list[tuple[EntryKind, Mapping[str, Any]]]
    end: EndReason | None
    touched: frozenset[Aspect]


async def probe_repo(repo: Git, old: RepoState, rules: EndRules, max_commits: int) -> Probe:
    """Read the repository's state and compare it with ``old``: branch switches, commits (at most
    ``max_commits`` for one HEAD move), pushes.

    Cancellation: the git calls are cancelled; nothing is changed.
    """
    new = RepoState.from_status(await repo.status())
    obs = observe(old, new, rules)
    items: list[tuple[EntryKind, Mapping[str, Any]]] = []
    touched: set[Aspect] = set()
    if obs.branch_switch is not None:
        touched.add(Aspect.HEAD)
        items.append(
            (
                EntryKind.BRANCH_SWITCH,
                {"from": obs.branch_switch[0], "to": obs.branch_switch[1], "head": new.head},
            )
        )
    if obs.head_moved is not None:
        touched.add(Aspect.HEAD)
        old_head, new_head = obs.head_moved
        items.extend(await _commits(repo, old_head, new_head, new.branch, max_commits))
    if obs.pushed:
        touched.add(Aspect.UPSTREAM)
        items.append(
            (
                EntryKind.PUSH,
                {"branch": new.branch, "upstream": new.upstream, "head": new.head},
            )
        )
    if (old.upstream, old.ahead, old.behind) != (new.upstream, new.ahead, new.behind):
        touched.add(Aspect.UPSTREAM)
    return Probe(state=new, items=items, end=obs.end, touched=frozenset(touched))


async def _commits(
    repo: Git, old: str | None, new: str, branch: str | None, max_commits: int
) -> list[tuple[EntryKind, Mapping[str, Any]]]:
    ref = f"{old}..{new}" if old else new
    commits = await repo.log(max_commits, ref=ref)
    out: list[tuple[EntryKind, Mapping[str, Any]]] = []
    for c in reversed(commits):
        try:
            files = [e.path for e in await repo.commit_files(c.oid)]
        except GitError:
            files = []
        out.append(
            (
                EntryKind.COMMIT,
                {
                    "hash": c.oid,
                    "subject": c.subject,
                    "files": files,
                    "branch": branch,
                    "parents": list(c.parents),
                    "author": c.author_name,
                },
            )
        )
    return out
