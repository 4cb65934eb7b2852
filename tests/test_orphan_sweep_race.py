"""The orphan sweep judges only the captures it held before asking the store which sessions this
daemon owns: a session started while that question is under way stays captured."""

from __future__ import annotations

from typing import Any

import trio

import engine
import engine.testing


class _SlowAnswers:
    """A session store whose next ``query`` once ``hold`` is set answers what the store held when
    it was asked, but only once ``release`` is set (as a database's answer, taken at the query's
    start, arrives later)."""

    def __init__(self, inner: engine.SessionStore) -> None:
        self._inner = inner
        self.hold = False
        self.asked = trio.Event()
        self.release = trio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def query(self, **kwargs: Any) -> list[engine.SessionRecord]:
        answer = await self._inner.query(**kwargs)
        if self.hold:  # the one query asked next
            self.hold = False
            self.asked.set()
            await self.release.wait()
        return answer


async def test_a_session_started_during_the_sweep_query_is_not_released() -> None:
    repo = engine.testing.FakeGit("/memory/work")
    repo.write_file("app.py", "x = 1\n")
    await repo.add(all=True)
    await repo.commit("initial")
    db = engine.testing.InMemoryDatabase()
    store = engine.testing.InMemoryWorklogStore(db)
    watchers = engine.testing.FakeWatchers()
    async with (
        engine.open_engine(engine.EngineConfig(shutdown_grace=2.0)) as eng,
        engine.testing.open_in_memory_session_store(db) as inner,
    ):
        registry = _SlowAnswers(inner)
        async with engine.open_scribe(
            eng,
            registry=registry,  # type: ignore[arg-type]
            store=store,
            open_repo=repo.open_at,
            open_fs=lambda root: repo.worktree,
            open_watcher=watchers,
        ) as scribe:
            first = await scribe.start(repo.root, agent_session_id="first")
            registry.hold = True
            async with trio.open_nursery() as nursery:
                nursery.start_soon(scribe.sweep_orphans)
                with trio.fail_after(10):
                    await registry.asked.wait()
                # The sweep's answer is taken; this session is registered after it.
                second = await scribe.start(repo.root, agent_session_id="second")
                registry.release.set()
            for rec in (first, second):
                assert scribe.capture_info(rec.id) is not None
                await scribe.append_note(rec.id, "still captured")
                assert (await inner.get(rec.id)).state is engine.SessionState.ACTIVE

            # A capture the store no longer gives this daemon is still released by the next sweep.
            await inner.set_state(
                first.id,
                engine.SessionState.ORPHANED,
                expected_version=(await inner.get(first.id)).version,
            )
            await scribe.sweep_orphans()
            assert scribe.capture_info(first.id) is None
            assert scribe.capture_info(second.id) is not None
