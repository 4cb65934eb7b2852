"""The server dies under load and comes back: typed errors, nothing committed is lost, the pool heals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import trio
from pg_support import start_test_server

import adapters


async def test_server_killed_under_load_then_restarted(pg_tmp_path: Path) -> None:
    server = await trio.to_thread.run_sync(start_test_server, pg_tmp_path)
    try:
        async with adapters.open_database(
            server.url(), pool_size=4, acquire_timeout=1.0, connect_timeout=1.0, migrate=False
        ) as db:
            await db.execute("CREATE TABLE crash_rows (id bigint PRIMARY KEY)")
            committed: set[int] = set()
            errors: list[Exception] = []
            successes_after_restart = 0
            restarted = False
            stop = trio.Event()

            async def writer(k: int) -> None:
                nonlocal successes_after_restart
                i = 0
                while not stop.is_set():
                    row_id = k * 1_000_000 + i
                    i += 1
                    try:
                        await db.execute("INSERT INTO crash_rows VALUES (%s)", (row_id,))
                    except adapters.DatabaseError as exc:
                        errors.append(exc)
                        await trio.sleep(0.02)
                    else:
                        committed.add(row_id)
                        if restarted:
                            successes_after_restart += 1

            async def until(predicate: Callable[[], bool]) -> None:
                with trio.fail_after(60):  # a guard against hanging, not a latency bound
                    done = predicate()
                    while not done:
                        await trio.sleep(0.02)
                        done = predicate()

            async with trio.open_nursery() as nursery:
                for k in range(8):
                    nursery.start_soon(writer, k)
                await until(lambda: len(committed) >= 200)
                await trio.to_thread.run_sync(server.stop, "immediate")
                # While it is down, calls keep failing (fast, typed) instead of hanging.
                before = len(errors)
                await until(lambda: len(errors) >= before + 40)
                down_committed = len(committed)
                await trio.to_thread.run_sync(server.start)
                restarted = True
                await until(lambda: successes_after_restart >= 100)
                stop.set()

            assert errors, "the outage was not noticed"
            unexpected = [e for e in errors if not isinstance(e, adapters.DatabaseUnavailableError)]
            assert unexpected == []
            # Every insert that returned is still there after the crash and recovery.
            stored = {r["id"] for r in await db.fetch("SELECT id FROM crash_rows")}
            assert committed <= stored
            assert len(committed) > down_committed
            stats = db.statistics()
            assert not stats.unavailable
            assert stats.threads_in_use == 0
    finally:
        await trio.to_thread.run_sync(server.stop, "fast")


async def test_cancel_while_no_connection_can_be_had(pg_tmp_path: Path) -> None:
    server = await trio.to_thread.run_sync(start_test_server, pg_tmp_path)
    try:
        async with adapters.open_database(
            server.url(), pool_size=1, acquire_timeout=1.0, connect_timeout=1.0, migrate=False
        ) as db:
            await trio.to_thread.run_sync(server.stop, "immediate")
            # The worker waits for a connection that cannot come; the cancel must not hang the call.
            with trio.fail_after(30), trio.move_on_after(0.05) as scope:
                await db.execute("SELECT 1")
            assert scope.cancelled_caught
            stats = db.statistics()
            assert stats.threads_in_use == 0 and stats.cancelled == 1
    finally:
        await trio.to_thread.run_sync(server.stop, "fast")
