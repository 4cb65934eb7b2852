"""The watcher contract: changes are reported, cancellation loses nothing, close ends iteration."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from contracts.backends import WatchBackend

import engine


async def _next(watcher: engine.Watcher) -> engine.ChangeBatch:
    with trio.fail_after(20):
        return await watcher.__anext__()


async def test_a_created_file_is_reported(watch: WatchBackend) -> None:
    async with watch.open_watcher() as w:
        assert w.root == watch.root
        watch.create("new.txt")
        batch = await _next(w)
        assert batch.changes
        assert engine.Change(engine.ChangeKind.CREATED, "new.txt") in batch.changes
        assert "new.txt" in batch.paths


async def test_a_cancelled_iteration_loses_nothing(watch: WatchBackend) -> None:
    async with watch.open_watcher() as w:
        with trio.CancelScope() as scope:
            scope.cancel()
            await w.__anext__()
        assert scope.cancelled_caught
        watch.create("after-cancel")
        with trio.CancelScope() as scope:
            scope.cancel()
            await w.__anext__()
        batch = await _next(w)
        assert "after-cancel" in batch.paths


async def test_close_ends_iteration_and_a_second_iterator_is_refused(watch: WatchBackend) -> None:
    ended: list[str] = []
    async with watch.open_watcher() as w:

        async def consume() -> None:
            async for _ in w:
                pass
            ended.append("stopped")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await w.__anext__()
            await w.aclose()
        await w.aclose()  # idempotent
        with pytest.raises(StopAsyncIteration):
            await w.__anext__()
    assert ended == ["stopped"]
