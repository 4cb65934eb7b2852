"""Sessions found by the id a coding agent uses for its own conversation: the one a reference names,
the live one a second start returns, and the locks that keep two such starts from racing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, final

import trio

from .._core._errors import InvalidArgumentError
from .._ports._session_store import LIVE_STATES, SessionRecord, SessionStore

if TYPE_CHECKING:
    from ._scribe_records import RepoOpener

__all__ = ["AgentStartLocks", "agent_session", "live_agent_session", "restart_for_agent"]


def _newest(records: Collection[SessionRecord]) -> SessionRecord | None:
    return max(records, key=lambda r: (r.created_at, r.id), default=None)


async def agent_session(registry: SessionStore, agent: str) -> SessionRecord | None:
    """The session an agent session id names: its newest live session, else its newest (None: it
    names none).

    Cancellation: nothing happens.
    """
    found = await registry.query(agent_session_id=agent)
    return _newest([r for r in found if r.state in LIVE_STATES]) or _newest(found)


async def live_agent_session(
    registry: SessionStore, captured: Collection[str], agent: str
) -> SessionRecord | None:
    """The newest live session of an agent session id: one this scribe captures and is not
    stopping (``captured``), or one another live engine process owns. A session stored as live that
    nobody captures (its process is gone, or it is this one's and its capture ended or is ending)
    does not count.

    Cancellation: nothing happens.
    """
    found = await registry.query(agent_session_id=agent, states=LIVE_STATES)
    live = [r for r in found if r.id in captured]
    others = [r for r in found if r.id not in captured and r.owner not in (None, registry.owner_id)]
    if others:
        gone = {r.id for r in await registry.find_orphans()}
        live += [r for r in others if r.id not in gone]
    return _newest(live)


async def restart_for_agent(
    registry: SessionStore,
    captured: Collection[str],
    open_repo: RepoOpener,
    agent: str,
    repo: Path,
) -> SessionRecord | None:
    """What a start with an agent session id finds already there: the agent's live session when it
    watches the work tree containing ``repo`` (None: there is none, start one).

    Raises:
        InvalidArgumentError: the agent's live session watches another work tree.
        NotARepositoryError: ``repo`` is not inside a work tree (only asked when a live session is
            found).

    Cancellation: nothing happens.
    """
    live = await live_agent_session(registry, captured, agent)
    if live is None:
        return None
    root = Path((await open_repo(repo)).root)
    if live.repo_path is not None and Path(live.repo_path) == root:
        return live
    raise InvalidArgumentError(
        f"agent session {agent!r} already has live session {live.id} on "
        f"{live.repo_path or 'no work tree'}, not on {root}: stop it first, or start with "
        "another agent session id"
    )


@final
class AgentStartLocks:
    """One lock per agent session id, held while a start with that id runs, so an agent's start hook
    that fires twice at once starts one session. A lock lives while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[trio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, agent: str | None) -> AsyncIterator[None]:
        """Hold ``agent``'s lock for the block (None: no lock, no wait).

        Cancellation: a cancelled wait takes nothing; the lock is released when the block ends.
        """
        if agent is None:
            yield
            return
        lock, users = self._locks.get(agent, (trio.Lock(), 0))
        self._locks[agent] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[agent]
            if users == 1:
                del self._locks[agent]
            else:
                self._locks[agent] = (lock, users - 1)
