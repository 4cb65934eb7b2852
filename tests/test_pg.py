"""The PostgreSQL adapter against a real server: cancellation on the server, typed errors, priority."""

from __future__ import annotations

import random
import threading
from typing import Any

import psycopg
import psycopg.errors
import pytest
import trio
import trio.testing

import adapters
import engine


async def _backend_pids(db: adapters.Database, app: str) -> set[int]:
    rows = await db.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
        (app,),
    )
    return {row["pid"] for row in rows}


async def _active(db: adapters.Database, app: str) -> list[dict[str, Any]]:
    return await db.fetch(
        "SELECT pid, state, query FROM pg_stat_activity "
        "WHERE application_name = %s AND state <> 'idle' AND pid <> pg_backend_pid()",
        (app,),
    )


async def test_queries_and_results(pg_url: str) -> None:
    async with adapters.open_database(pg_url, pool_size=2) as db:
        await db.execute("CREATE TEMP TABLE IF NOT EXISTS unused (x int)")
        assert await db.fetchval("SELECT 1 + %s", (41,)) == 42
        assert await db.fetchrow("SELECT 1 AS a, 'x' AS b") == {"a": 1, "b": "x"}
        assert await db.fetchrow("SELECT 1 WHERE false") is None
        assert await db.fetchval("SELECT 1 WHERE false") is None
        rows = await db.fetch("SELECT g AS n FROM generate_series(1, %(k)s) g", {"k": 3})
        assert rows == [{"n": 1}, {"n": 2}, {"n": 3}]
        assert await db.fetch("SET LOCAL work_mem = '4MB'") == []
        stats = db.statistics()
        assert stats.pool_size == 2 and stats.queries >= 6 and stats.errors == 0
        assert not stats.unavailable


async def test_cancelled_sleep_is_cancelled_on_the_server(pg_url: str) -> None:
    app = "test-cancel-sleep"
    async with adapters.open_database(pg_url, pool_size=2, application_name=app) as db:
        before = await _backend_pids(db, app)
        with trio.move_on_after(0.2) as scope:
            await db.execute("SELECT pg_sleep(10)")
        assert scope.cancelled_caught
        # The worker is back and its statement is over on the server: nothing of ours is active.
        assert await _active(db, app) == []
        stats = db.statistics()
        assert stats.threads_in_use == 0 and stats.cancelled == 1
        # The same connections serve later queries: no connection was discarded or replaced.
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(db.fetchval, "SELECT pg_sleep(0.05)")
        assert await db.fetchval("SELECT 1") == 1
        assert await _backend_pids(db, app) == before
        assert db.statistics().connections == 2


async def test_cancel_while_waiting_for_a_connection(pg_url: str) -> None:
    app = "test-cancel-queued"
    async with adapters.open_database(pg_url, pool_size=1, application_name=app) as db:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.execute, "SELECT pg_sleep(0.3)")
            await trio.testing.wait_all_tasks_blocked()
            with trio.move_on_after(0.05) as scope:
                await db.execute("SELECT pg_sleep(10)")
            assert scope.cancelled_caught
        assert await _active(db, app) == []
        assert db.statistics().gate_waiting == 0


async def test_cancel_inside_a_transaction_commits_nothing(pg_url: str) -> None:
    async with adapters.open_database(pg_url, pool_size=2) as db:
        await db.execute("CREATE TABLE IF NOT EXISTS cancel_tx (id int)")
        await db.execute("TRUNCATE cancel_tx")
        inserted = threading.Event()
        proceed = threading.Event()

        def work(conn: psycopg.Connection[Any]) -> None:
            conn.execute("INSERT INTO cancel_tx VALUES (1)")
            inserted.set()
            # No statement runs while the cancel arrives: the repeated cancel must catch the next one.
            proceed.wait(10)
            conn.execute("SELECT pg_sleep(10)")
            conn.execute("INSERT INTO cancel_tx VALUES (2)")

        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:

                async def run() -> None:
                    await db.run_sync(work)

                nursery.start_soon(run)
                await trio.to_thread.run_sync(inserted.wait, 10)
                scope.cancel()
                proceed.set()
        assert scope.cancelled_caught
        assert await db.fetchval("SELECT count(*) FROM cancel_tx") == 0
        assert await _active(db, "scribe") == []


async def test_statement_timeout_is_a_typed_server_cancel(pg_url: str) -> None:
    async with adapters.open_database(pg_url, pool_size=1, statement_timeout=0.05) as db:
        with pytest.raises(adapters.QueryCancelledError) as info:
            await db.execute("SELECT pg_sleep(5)")
        assert isinstance(info.value.__cause__, psycopg.errors.QueryCanceled)
        assert info.value.sqlstate == "57014"
        assert isinstance(info.value, engine.ScribeError)
        assert await db.fetchval("SELECT 1") == 1


async def test_constraint_violations_and_bad_sql_are_typed(pg_url: str) -> None:
    async with adapters.open_database(pg_url, pool_size=2) as db:
        await db.execute("DROP TABLE IF EXISTS typed_errors")
        await db.execute(
            "CREATE TABLE typed_errors (id int CONSTRAINT typed_errors_pk PRIMARY KEY, "
            "n int NOT NULL CHECK (n > 0))"
        )
        await db.execute("INSERT INTO typed_errors VALUES (1, 1)")
        with pytest.raises(adapters.IntegrityError) as dup:
            await db.execute("INSERT INTO typed_errors VALUES (1, 1)")
        assert dup.value.constraint == "typed_errors_pk"
        assert dup.value.sqlstate == "23505"
        assert isinstance(dup.value.__cause__, psycopg.errors.UniqueViolation)
        with pytest.raises(adapters.IntegrityError) as check:
            await db.execute("INSERT INTO typed_errors VALUES (2, -1)")
        assert check.value.sqlstate == "23514"
        with pytest.raises(adapters.QueryError) as syntax:
            await db.execute("SELEC 1")
        assert syntax.value.sqlstate == "42601"
        assert isinstance(syntax.value.__cause__, psycopg.errors.SyntaxError)
        with pytest.raises(adapters.QueryError) as missing:
            await db.fetch("SELECT * FROM no_such_table")
        assert missing.value.sqlstate == "42P01"
        with pytest.raises(adapters.QueryError):
            await db.fetchval("SELECT 'abc'::int")
        for exc in (dup.value, check.value, syntax.value, missing.value):
            assert isinstance(exc, adapters.DatabaseError)
            assert isinstance(exc, engine.ScribeError)
        # Every connection came back clean.
        assert await db.fetchval("SELECT count(*) FROM typed_errors") == 1
        assert db.statistics().errors == 5


async def test_run_sync_commits_or_rolls_back(pg_url: str) -> None:
    class Boom(Exception):
        pass

    async with adapters.open_database(pg_url, pool_size=2) as db:
        await db.execute("CREATE TABLE IF NOT EXISTS run_sync_tx (id int)")
        await db.execute("TRUNCATE run_sync_tx")

        def ok(conn: psycopg.Connection[Any]) -> int:
            conn.execute("INSERT INTO run_sync_tx VALUES (1), (2)")
            row = conn.execute("SELECT count(*) FROM run_sync_tx").fetchone()
            assert row is not None
            return int(row[0])

        def fails(conn: psycopg.Connection[Any]) -> None:
            conn.execute("INSERT INTO run_sync_tx VALUES (3)")
            raise Boom

        def fails_in_sql(conn: psycopg.Connection[Any]) -> None:
            conn.execute("INSERT INTO run_sync_tx VALUES (4)")
            conn.execute("INSERT INTO run_sync_tx VALUES ('x')")

        assert await db.run_sync(ok) == 2
        with pytest.raises(Boom):  # the caller's own exception passes through unchanged
            await db.run_sync(fails)
        with pytest.raises(adapters.QueryError):
            await db.run_sync(fails_in_sql)
        assert await db.fetchval("SELECT array_agg(id ORDER BY id) FROM run_sync_tx") == [1, 2]


async def test_closed_database_and_bad_arguments(pg_url: str) -> None:
    async with adapters.open_database(pg_url, pool_size=1) as db:
        pass
    with pytest.raises(adapters.DatabaseClosedError):
        await db.fetchval("SELECT 1")
    with pytest.raises(engine.InvalidArgumentError):
        async with adapters.open_database(pg_url, pool_size=0):
            pass
    with pytest.raises(engine.InvalidArgumentError):
        async with adapters.open_database(pg_url, statement_timeout=-1):
            pass


async def test_unreachable_server_is_a_typed_error(tmp_path: Any) -> None:
    url = f"postgresql://postgres@/postgres?host={tmp_path}&connect_timeout=2"
    with pytest.raises(adapters.DatabaseUnavailableError) as info:
        async with adapters.open_database(url, migrate=False):
            pass
    assert isinstance(info.value.__cause__, psycopg.OperationalError)


async def test_high_priority_query_overtakes_queued_low_ones(pg_url: str) -> None:
    order: list[str] = []
    async with engine.open_engine() as eng, adapters.open_database(pg_url, pool_size=1) as db:
        holder_started = trio.Event()

        async def hold() -> None:
            async with eng.open_session("holder", priority=engine.Priority.LOW):
                holder_started.set()
                await db.execute("SELECT pg_sleep(0.2)")

        async def query(name: str, priority: engine.Priority) -> None:
            async with eng.open_session(name, priority=priority):
                await db.fetchval("SELECT 1")
                order.append(name)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(hold)
            await holder_started.wait()
            await trio.testing.wait_all_tasks_blocked()
            for i in range(3):
                nursery.start_soon(query, f"low{i}", engine.Priority.LOW)
                await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(query, "high", engine.Priority.HIGH)
        assert order[0] == "high"
        assert sorted(order[1:]) == ["low0", "low1", "low2"]


async def test_cancellations_at_random_moments_leave_the_pool_consistent(pg_url: str) -> None:
    app = "test-cancel-storm"
    rng = random.Random(1234)
    async with adapters.open_database(pg_url, pool_size=3, application_name=app) as db:
        await db.execute("CREATE TABLE IF NOT EXISTS storm (id int)")
        before = await _backend_pids(db, app)
        outcomes = {"done": 0, "cancelled": 0}

        def tx(conn: psycopg.Connection[Any]) -> None:
            conn.execute("INSERT INTO storm VALUES (1)")
            conn.execute("SELECT pg_sleep(0.002)")
            conn.execute("DELETE FROM storm WHERE id = 1")

        async def one(i: int) -> None:
            with trio.move_on_after(rng.choice([0, 0.0005, 0.001, 0.002, 0.004, 0.008])) as scope:
                if i % 3 == 0:
                    await db.run_sync(tx)
                elif i % 3 == 1:
                    await db.fetch("SELECT pg_sleep(0.003), g FROM generate_series(1, 3) g")
                else:
                    await db.execute("SELECT pg_sleep(0.001)")
            outcomes["cancelled" if scope.cancelled_caught else "done"] += 1

        async with trio.open_nursery() as nursery:
            for i in range(150):
                nursery.start_soon(one, i)
                if i % 10 == 0:
                    await trio.sleep(0.002)
        assert outcomes["cancelled"] > 0 and outcomes["done"] > 0
        stats = db.statistics()
        assert stats.threads_in_use == 0 and stats.gate_waiting == 0 and stats.errors == 0
        assert await _active(db, app) == []
        assert await db.fetchval("SELECT count(*) FROM storm") == 0  # no transaction half-committed
        assert await _backend_pids(db, app) == before  # every connection came back usable
