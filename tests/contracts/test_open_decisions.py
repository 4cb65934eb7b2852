"""The decisions in force: open ones only (neither closed nor superseded nor expired), of a session,
a repository or either, newest first."""

from __future__ import annotations

import pytest
import trio
from contracts.backends import MemoriesBackend

import engine
from engine import DecisionStatus, NewDecision


async def test_open_decisions_newest_first_in_scope(memories: MemoriesBackend) -> None:
    async with memories.open_store() as store:
        await store.ensure_session("a", repo="/work/shop")
        await store.ensure_session("b", repo="/work/shop")
        await store.ensure_session("other", repo="/work/other")
        first = await store.add_decision(NewDecision("cache in redis", session_id="a"))
        await trio.sleep(0.01)
        replaced = await store.supersede_decision(first.id, NewDecision("cache in postgres"))
        await trio.sleep(0.01)
        closed = await store.add_decision(NewDecision("try a queue", session_id="b"))
        await store.close_decision(closed.id)
        await trio.sleep(0.01)
        newest = await store.add_decision(NewDecision("locks per job", session_id="b"))
        await store.add_decision(NewDecision("short lived", session_id="b", ttl=0.001))
        other = await store.add_decision(NewDecision("elsewhere", session_id="other"))
        await trio.sleep(0.05)

        shop = await store.open_decisions(repo="/work/shop")
        assert [d.id for d in shop] == [newest.id, replaced.id]
        assert all(d.status is DecisionStatus.OPEN for d in shop)
        assert [d.id for d in await store.open_decisions(repo="/work/shop", limit=1)] == [newest.id]
        assert [d.id for d in await store.open_decisions(session_id="a")] == [replaced.id]
        either = await store.open_decisions(session_id="other", repo="/work/shop")
        assert {d.id for d in either} == {newest.id, replaced.id, other.id}
        assert await store.open_decisions(repo="/nowhere") == []
        with pytest.raises(engine.InvalidArgumentError):
            await store.open_decisions(repo="", limit=1)
        with pytest.raises(engine.InvalidArgumentError):
            await store.open_decisions(limit=0)
