"""Starting a captured session, step by step: the checked request, reading the work tree, registering
the record, the start entry, waiting for the watcher, and recording a start that failed."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import trio

from .._core._errors import InvalidArgumentError, ScribeError
from .._core._limits import check_backlog_id
from .._core._priority import Priority
from .._core._session import Session
from .._core._state import SessionKind, SessionState
from .._ports._git import Git
from .._ports._session_store import SessionRecord, SessionStore
from .._ports._worklog_records import EntryKind
from ._capture import Capture
from ._rules import RepoState, backlog_id_from_branch
from ._scribe_records import RepoOpener

__all__ = [
    "StartRequest",
    "WorkTree",
    "read_work_tree",
    "record_failed_start",
    "register",
    "start_entry",
    "wait_armed",
]

_log = logging.getLogger(__name__)

_ARM_TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True)
class StartRequest:
    """What :meth:`Scribe.start` was asked for, checked."""

    kind: SessionKind
    priority: Priority
    tags: tuple[str, ...]
    idle_timeout: float | None
    pinned: tuple[str, ...]
    agent_session_id: str | None = None


@dataclass(frozen=True, slots=True)
class WorkTree:
    """The work tree a session starts on, as read when it starts."""

    git: Git
    state: RepoState
    backlog_id: str | None
    label: str


def _usable_backlog_id(found: str | None) -> str | None:
    """A backlog id found in a branch name, or None when it is not one (file names are made of it)."""
    if found is None:
        return None
    try:
        return check_backlog_id(found)
    except InvalidArgumentError:
        return None


async def read_work_tree(
    open_repo: RepoOpener, repo: Path, *, name: str | None, backlog_id: str | None, pattern: str
) -> WorkTree:
    """Open the repository a session starts in and read its state, backlog id and label."""
    git = await open_repo(repo)
    state = RepoState.from_status(await git.status())
    backlog = (
        backlog_id.strip().upper()
        if backlog_id
        else _usable_backlog_id(backlog_id_from_branch(state.branch, pattern))
    )
    label = (
        name
        or " ".join(x for x in (backlog, state.branch or (state.head or "")[:8]) if x)
        or Path(git.root).name
    )
    return WorkTree(git=git, state=state, backlog_id=backlog, label=label)


async def register(
    registry: SessionStore,
    session: Session,
    tree: WorkTree,
    request: StartRequest,
    parent: SessionRecord | None,
    related_ids: list[str],
) -> SessionRecord:
    """Register the new session's record (state active) with its work tree and relations."""
    record = SessionRecord.from_info(
        session.info(),
        repo_path=Path(tree.git.root),
        idle_timeout=request.idle_timeout,
        related_ids=related_ids,
        agent_session_id=request.agent_session_id,
    )
    if parent is not None:
        record = replace(record, parent_id=parent.id)
    return await registry.register(record)


def start_entry(
    record: SessionRecord, tree: WorkTree, request: StartRequest
) -> tuple[EntryKind, Mapping[str, Any]]:
    """The session-start entry of a new session."""
    return (
        EntryKind.SESSION_START,
        {
            "name": record.name,
            "backlog_id": tree.backlog_id,
            "kind": request.kind.value,
            "priority": str(request.priority),
            "tags": list(request.tags),
            "repo": str(tree.git.root),
            "branch": tree.state.branch,
            "head": tree.state.head,
            "parent": record.parent_id,
            "agent_session_id": record.agent_session_id,
        },
    )


async def wait_armed(cap: Capture) -> None:
    """Return once the capture sees changes or has ended, or after 10 s (a watcher that cannot start
    is retried in the background)."""
    with trio.move_on_after(_ARM_TIMEOUT):
        async with trio.open_nursery() as wait:

            async def armed() -> None:
                await cap.armed.wait()
                wait.cancel_scope.cancel()

            async def ended() -> None:
                await cap.stopped.wait()
                wait.cancel_scope.cancel()

            wait.start_soon(armed)
            wait.start_soon(ended)


async def record_failed_start(
    registry: SessionStore, session: Session, exc: BaseException, cleanup_timeout: float
) -> None:
    """Cancel a half-started session and record it as failed (shielded, bounded by
    ``cleanup_timeout``)."""
    session.cancel()
    with trio.CancelScope(shield=True) as scope:
        scope.deadline = trio.current_time() + cleanup_timeout
        try:
            current = await registry.get(session.id)
            await registry.set_state(
                session.id,
                SessionState.FAILED,
                expected_version=current.version,
                error=f"start failed: {type(exc).__name__}: {exc}",
            )
        except ScribeError as failed:
            _log.warning(
                "session %s failed to start (%s: %s) and could not be recorded as failed: %s: %s",
                session.id,
                type(exc).__name__,
                exc,
                type(failed).__name__,
                failed,
                extra={"session": session.id},
            )
