"""Adoption tried again: an orphaned session whose adoption failed for a passing reason (the store
refused it while this daemon's lease was being renewed, or its released capture was still ending
here) is adopted by a later sweep, not remembered as never adoptable. In-memory parts; the store's
refusal is a fault a real server cannot be made to give on demand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing

import engine
import engine.testing

SID = "orphan-1"


class RefusingRegistry:
    """The in-memory session store, refusing the next ``refusals`` adoptions as a store does while
    this daemon's lease has expired and is not renewed yet."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.refusals = 0

    async def adopt(self, session_id: str) -> engine.SessionRecord:
        await trio.lowlevel.checkpoint()
        if self.refusals:
            self.refusals -= 1
            raise engine.NotOwnerError(session_id, None, "this daemon's lease expired")
        return await self.real.adopt(session_id)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@asynccontextmanager
async def scribe_with_an_orphan() -> AsyncIterator[tuple[engine.Engine, Any, RefusingRegistry]]:
    repo = engine.testing.FakeGit("/memory/work")
    await repo.commit("initial", allow_empty=True)
    db = engine.testing.InMemoryDatabase()
    async with (
        engine.open_engine(engine.EngineConfig(shutdown_grace=2.0)) as eng,
        engine.testing.open_in_memory_session_store(db) as store,
    ):
        registry = RefusingRegistry(store)
        await store.register(
            engine.SessionRecord(
                id=SID, name="lost", state="orphaned", repo_path=repo.root, owner=store.owner_id
            )
        )
        async with engine.open_scribe(
            eng,
            registry=registry,  # type: ignore[arg-type]
            store=engine.testing.InMemoryWorklogStore(db),
            open_repo=repo.open_at,
            open_fs=lambda root: repo.worktree,
            open_watcher=engine.testing.FakeWatchers(),
        ) as scribe:
            yield eng, scribe, registry


async def test_an_adoption_the_store_refused_once_is_tried_again() -> None:
    async with scribe_with_an_orphan() as (_, scribe, registry):
        registry.refusals = 1
        assert await scribe.adopt_orphans(own_only=True) == []
        await trio.testing.wait_all_tasks_blocked()  # the next sweep comes a while later
        [adopted] = await scribe.adopt_orphans(own_only=True)
        assert adopted.id == SID and adopted.state is engine.SessionState.ACTIVE
        assert scribe.capture_info(SID) is not None


async def test_a_session_still_ending_here_is_adopted_once_it_has_ended() -> None:
    async with scribe_with_an_orphan() as (eng, scribe, _):
        # what a released capture leaves while its tasks end: a live engine session of that id
        ending = await eng.start_session("ending", session_id=SID)
        assert await scribe.adopt_orphans(own_only=True) == []
        ending.cancel()
        await ending.wait()
        [adopted] = await scribe.adopt_orphans(own_only=True)
        assert adopted.id == SID and scribe.capture_info(SID) is not None
