"""PostgreSQL adapter benchmark (issue 4): throughput against asyncpg and sync psycopg, cancel latency,
priority admission under a saturated pool.

Run it as ``.venv/bin/python bench/postgres.py`` (full run) or with ``--quick`` (fewer repetitions). It
starts its own embedded server in a temporary directory. Throughput is measured side by side in one
process: for every repetition each client runs once, in an order that rotates between repetitions so drift
on a shared machine hits all alike; the figure is the median over repetitions of the per-repetition ratio.
Exit status 0 only if every target passes (``--no-fail``: always 0).

Figures and targets:
    (a) 16 concurrent tasks sharing a pool of 4 connections, each running ``SELECT 1`` in a loop, and
        the same for a registry update (``SessionRegistry.update``: a row-versioned UPDATE ... RETURNING
        of a whole session record, each task its own session); the baselines run the registry's own
        statement and record conversion on their driver. Adapter (trio; simple statements on the trio
        thread) against asyncpg (asyncio, pool of 4): >= 0.8x. Plain sync psycopg (16 threads,
        psycopg_pool of 4) is printed for reference.
    (b) cancel latency: ``SELECT pg_sleep(10)`` under a short deadline, time from the deadline until the
        call has returned (statement cancelled on the server, worker back): p99 < 50 ms.
    (c) the pool saturated by LOW-priority sessions running a query of known length T in a loop; a
        HIGH-priority session's ``SELECT 1`` latency: p99 <= 2 T. The same with the HIGH session at LOW
        priority (plain FIFO) is printed for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import psycopg
import psycopg_pool
import trio
from psycopg.rows import dict_row

import adapters
import engine
from adapters.postgres._session_rows import COLUMNS as _COLUMNS
from adapters.postgres._session_rows import UPDATE as _UPDATE
from adapters.postgres._session_rows import record_from_row as _record
from adapters.postgres._session_rows import row_values as _values
from adapters.postgres._session_rows import updated_record as _updated

TASKS = 16
POOL = 4
SETTINGS = {"fsync": "off", "max_connections": "100"}


@dataclasses.dataclass(frozen=True)
class Sizes:
    queries_per_task: int
    repetitions: int
    cancels: int
    high_samples: int


FULL = Sizes(queries_per_task=200, repetitions=15, cancels=200, high_samples=200)
QUICK = Sizes(queries_per_task=100, repetitions=7, cancels=60, high_samples=60)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


@contextlib.contextmanager
def embedded_server() -> Iterator[adapters.EmbeddedServer]:
    directory = Path(tempfile.mkdtemp(prefix="scribe-pg-bench-"))
    server = adapters.EmbeddedServer(directory / "pgdata", settings=SETTINGS)
    try:
        server.start()
        server.create_database("bench")
        yield server
    finally:
        server.stop("fast")
        shutil.rmtree(directory, ignore_errors=True)


# -- (a) throughput ---------------------------------------------------------------------------------


def _positional(sql: str) -> tuple[str, list[str]]:
    """psycopg ``%(name)s`` placeholders -> asyncpg ``$n``, and the parameter names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return re.sub(r"%\((\w+)\)s", number, sql), names


def _changed(record: engine.SessionRecord, i: int) -> engine.SessionRecord:
    return dataclasses.replace(record, description=f"d{i}")


async def _adapter_run(url: str, n: int, kind: str) -> float:
    async with adapters.open_database(url, pool_size=POOL, migrate=False) as db:
        if kind == "select":
            await db.fetchval("SELECT 1")

            async def work(k: int) -> None:
                for _ in range(n):
                    await db.fetchval("SELECT 1")

            t0 = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for k in range(TASKS):
                    nursery.start_soon(work, k)
            return time.perf_counter() - t0

        async with adapters.open_session_registry(db) as registry:
            records = [await registry.get(f"bench-{k}") for k in range(TASKS)]

            async def update(k: int) -> None:
                rec = records[k]
                for i in range(n):
                    rec = await registry.update(_changed(rec, i))

            t0 = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for k in range(TASKS):
                    nursery.start_soon(update, k)
            return time.perf_counter() - t0


async def _asyncpg_run(dsn: str, n: int, kind: str) -> float:
    pool = await asyncpg.create_pool(dsn, min_size=POOL, max_size=POOL)
    try:
        if kind == "select":
            await pool.fetchval("SELECT 1")

            async def work(k: int) -> None:
                for _ in range(n):
                    await pool.fetchval("SELECT 1")
        else:
            # The registry's own statement and record conversion, on asyncpg.
            sql, names = _positional(_UPDATE)
            columns = "SELECT " + _COLUMNS + " FROM sessions WHERE id = $1"
            records = [_record(await pool.fetchrow(columns, f"bench-{k}")) for k in range(TASKS)]

            async def work(k: int) -> None:
                rec = records[k]
                for i in range(n):
                    new = _changed(rec, i)
                    values = _values(new)
                    rec = _updated(new, await pool.fetchrow(sql, *(values[name] for name in names)))

        t0 = time.perf_counter()
        await asyncio.gather(*(work(k) for k in range(TASKS)))
        return time.perf_counter() - t0
    finally:
        await pool.close()


def _psycopg_run(url: str, n: int, kind: str) -> float:
    with psycopg_pool.ConnectionPool(
        url, min_size=POOL, max_size=POOL, kwargs={"autocommit": True}, open=True
    ) as pool:
        pool.wait()
        barrier = threading.Barrier(TASKS + 1)

        def work(k: int) -> None:
            barrier.wait()
            if kind == "select":
                for _ in range(n):
                    with pool.connection() as conn:
                        conn.execute("SELECT 1").fetchone()
            else:
                with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                    cur.execute(
                        "SELECT " + _COLUMNS + " FROM sessions WHERE id = %s", (f"bench-{k}",)
                    )
                    rec = _record(cur.fetchone() or {})
                for i in range(n):
                    new = _changed(rec, i)
                    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                        cur.execute(_UPDATE, _values(new))
                        rec = _updated(new, cur.fetchone() or {})
            barrier.wait()

        threads = [threading.Thread(target=work, args=(k,)) for k in range(TASKS)]
        for t in threads:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        barrier.wait()
        elapsed = time.perf_counter() - t0
        for t in threads:
            t.join()
        return elapsed


def _dsn(server: adapters.EmbeddedServer) -> str:
    return f"postgresql://postgres@/bench?host={server.socket_dir}"


async def _prepare(url: str) -> None:
    async with adapters.open_database(url, pool_size=1) as db:
        async with adapters.open_session_registry(db) as registry:
            for k in range(TASKS):
                with contextlib.suppress(engine.StoreConflictError):
                    await registry.register(
                        engine.SessionRecord(id=f"bench-{k}", name=f"bench {k}", state="active")
                    )


def throughput(server: adapters.EmbeddedServer, sizes: Sizes) -> dict[str, dict[str, list[float]]]:
    url = server.url("bench")
    trio.run(_prepare, url)
    n = sizes.queries_per_task
    total = n * TASKS
    clients: dict[str, Callable[[str], float]] = {
        "adapter": lambda kind: trio.run(_adapter_run, url, n, kind),
        "asyncpg": lambda kind: asyncio.run(_asyncpg_run(_dsn(server), n, kind)),
        "psycopg-sync": lambda kind: _psycopg_run(url, n, kind),
    }
    results: dict[str, dict[str, list[float]]] = {
        kind: {name: [] for name in clients} for kind in ("select", "update")
    }
    names = list(clients)
    for rep in range(sizes.repetitions):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for kind in ("select", "update"):
            for name in order:
                results[kind][name].append(total / clients[name](kind))
    return results


# -- (b) cancel latency ------------------------------------------------------------------------------


async def _cancel_latency(url: str, count: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    async with adapters.open_database(
        url, pool_size=POOL, migrate=False, application_name="bench-cancel"
    ) as db:
        for i in range(count):
            deadline = trio.current_time() + 0.01 + (i % 5) * 0.005
            with trio.CancelScope(deadline=deadline):
                await db.execute("SELECT pg_sleep(10)")
            latencies.append(trio.current_time() - deadline)
        active = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bench-cancel' "
            "AND state <> 'idle' AND pid <> pg_backend_pid()"
        )
    return latencies, active


# -- (c) priority under saturation -----------------------------------------------------------------

_LOW_QUERY = "SELECT pg_sleep(0.01)"


async def _one_query_time(url: str) -> float:
    async with adapters.open_database(url, pool_size=POOL, migrate=False) as db:
        samples = []
        for _ in range(30):
            t0 = trio.current_time()
            await db.execute(_LOW_QUERY)
            samples.append(trio.current_time() - t0)
    return statistics.median(samples)


async def _high_latency(url: str, samples: int, high: engine.Priority) -> list[float]:
    latencies: list[float] = []
    async with (
        engine.open_engine() as eng,
        adapters.open_database(url, pool_size=POOL, migrate=False) as db,
    ):
        stop = trio.Event()

        async def low(k: int) -> None:
            async with eng.open_session(f"low-{k}", priority=engine.Priority.LOW):
                while not stop.is_set():
                    await db.execute(_LOW_QUERY)

        async def probe() -> None:
            async with eng.open_session("probe", priority=high):
                await trio.sleep(0.2)  # let the LOW sessions fill the pool and queue up
                for i in range(samples):
                    await trio.sleep(0.003 + (i % 7) * 0.001)
                    t0 = trio.current_time()
                    await db.fetchval("SELECT 1")
                    latencies.append(trio.current_time() - t0)
            stop.set()

        async with trio.open_nursery() as nursery:
            for k in range(TASKS):
                nursery.start_soon(low, k)
            nursery.start_soon(probe)
    return latencies


# -- report ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer queries and repetitions")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a target fails")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cpus, psycopg {psycopg.__version__}, "
        f"asyncpg {asyncpg.__version__}, trio {trio.__version__}"
    )
    print(
        f"{TASKS} tasks, pool {POOL}, {sizes.queries_per_task} queries per task, "
        f"{sizes.repetitions} repetitions"
    )
    verdicts: list[bool] = []

    def verdict(ok: bool) -> str:
        verdicts.append(ok)
        return "PASS" if ok else "FAIL"

    with embedded_server() as server:
        results = throughput(server, sizes)
        for kind, label in (("select", "SELECT 1"), ("update", "registry update")):
            r = results[kind]
            ratios = [a / b for a, b in zip(r["adapter"], r["asyncpg"], strict=True)]
            sync_ratios = [a / b for a, b in zip(r["adapter"], r["psycopg-sync"], strict=True)]
            ratio = statistics.median(ratios)
            print(
                f"(a) {label:16s} adapter {statistics.median(r['adapter']):8.0f}/s   "
                f"asyncpg {statistics.median(r['asyncpg']):8.0f}/s   "
                f"psycopg-sync {statistics.median(r['psycopg-sync']):8.0f}/s   "
                f"adapter/asyncpg {ratio:.2f}x (target >= 0.80x) {verdict(ratio >= 0.8)}   "
                f"adapter/psycopg-sync {statistics.median(sync_ratios):.2f}x"
            )

        latencies, active = trio.run(_cancel_latency, server.url("bench"), sizes.cancels)
        q = p99(latencies) * 1000
        print(
            f"(b) cancel latency over {len(latencies)} cancels: median "
            f"{statistics.median(latencies) * 1000:.1f} ms, p99 {q:.1f} ms, max {max(latencies) * 1000:.1f} ms "
            f"(target p99 < 50 ms) {verdict(q < 50 and active == 0)}; still active on the server: {active}"
        )

        url = server.url("bench")
        one = trio.run(_one_query_time, url)
        with_priority = trio.run(_high_latency, url, sizes.high_samples, engine.Priority.HIGH)
        fifo = trio.run(_high_latency, url, sizes.high_samples, engine.Priority.LOW)
        hp = p99(with_priority)
        print(
            f"(c) one LOW query T = {one * 1000:.1f} ms; HIGH SELECT 1 under saturation: median "
            f"{statistics.median(with_priority) * 1000:.1f} ms, p99 {hp * 1000:.1f} ms = {hp / one:.2f} T "
            f"(target <= 2 T) {verdict(hp <= 2 * one)}; same query at LOW (FIFO): p99 "
            f"{p99(fifo) * 1000:.1f} ms = {p99(fifo) / one:.2f} T"
        )
    ok = all(verdicts)
    print("ALL PASS" if ok else "SOME FAIL")
    return 0 if ok or args.no_fail else 1


if __name__ == "__main__":
    sys.exit(main())
