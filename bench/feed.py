"""Live feed benchmark: the feed server against a naive per-message trio-websocket fan-out.

Run: .venv/bin/python bench/feed.py   (needs `npm install` in tests/js, which scripts/test.sh does)

Both servers run in this process, each on its own engine, and get events the same way: the engine's
event stream (``eng.publish_nowait("session.worklog", {"t": time.monotonic(), ...})``). The clients
are Node ``ws`` clients in one separate process (bench/feed_clients.mjs), so they use the other core
and never share the server's; the same client code measures both servers. Every event carries its
publication time on CLOCK_MONOTONIC, which Node's process.hrtime also reads, so latency is measured
end to end (publish -> engine stream -> server -> socket -> client parse). Runs alternate between
the two servers, each on fresh connections, and every figure is the median of 5 repetitions.

The baseline is what a first implementation does: for each event, encode it once and await
``send_message`` to every client in turn (one frame per event per client).

Two variants: ``quiet`` (the machine as it is) and ``contended`` (a CPU-bound process, ``python -c
'while True: pass'``, runs for the whole variant: with two cores it takes one from the server and
the clients). Targets, in both: (a) 200 events/s to 100 clients: the feed's p99 latency <= the
baseline's, and < 20 ms; (b) a burst of 10,000 events to 100 clients: all delivered >= 5x faster
than the baseline (which is waited for at most 8x the feed's time: past it, the figure is a lower
bound); (c) one stalled client (its socket buffers full, the server's send to it
blocked): the others' p99 within 1.5x of a run without it.

Run: bench/feed.py [quiet|contended] [a] [b] [c]   (default: both variants, all figures;
FEED_BENCH_REPS=n for fewer repetitions)
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import orjson
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio.lowlevel

import adapters
import engine

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret-" + "b" * 32
CLIENTS = 100
REPS = int(os.environ.get("FEED_BENCH_REPS", "5"))
TOPIC = "worklog:bench"
FILLER = "worklog:filler"
BURST_CAP = 8  # the baseline's burst is waited for at most this many times the feed's


class Clients:
    """The Node client process."""

    def __init__(self, process: trio.Process) -> None:
        self._process = process
        assert process.stdout is not None and process.stdin is not None
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._buffer = b""

    async def call(self, **command: Any) -> dict[str, Any]:
        await self._stdin.send_all(json.dumps(command).encode() + b"\n")
        while b"\n" not in self._buffer:
            chunk = await self._stdout.receive_some(65536)
            if not chunk:
                raise RuntimeError("the client process ended")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply


@asynccontextmanager
async def open_clients() -> AsyncIterator[Clients]:
    node = shutil.which("node")
    if node is None or not (HERE.parent / "tests" / "js" / "node_modules" / "ws").is_dir():
        raise SystemExit("needs node and `npm install` in tests/js (scripts/test.sh does both)")
    process = await trio.lowlevel.open_process(
        [node, str(HERE / "feed_clients.mjs")], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        yield Clients(process)
    finally:
        with trio.CancelScope(shield=True):
            process.kill()
            await process.wait()
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    await pipe.aclose()


async def naive_server(
    eng: engine.Engine, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """The baseline: one frame per event per client, sent in turn."""
    clients: set[WebSocketConnection] = set()

    async def handler(request: WebSocketRequest) -> None:
        conn = await request.accept()
        await conn.send_message('{"type":"welcome"}')
        clients.add(conn)
        try:
            while True:
                await conn.get_message()
        except ConnectionClosed:
            pass
        finally:
            clients.discard(conn)

    async with eng.open_subscription(["session.worklog"], max_buffer=1_000_000) as sub:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
            task_status.started(server.port)
            async for event in sub:
                message = orjson.dumps(
                    {"topic": f"worklog:{event.session_id}", "data": event.payload}
                ).decode()
                for conn in list(clients):
                    try:
                        await conn.send_message(message)
                    except ConnectionClosed:
                        clients.discard(conn)


class Target:
    def __init__(self, name: str, eng: engine.Engine, url: str, mode: str, token: str) -> None:
        self.name = name
        self.eng = eng
        self.url = url
        self.mode = mode
        self.token = token

    def publish(self, i: int, pad: str = "") -> None:
        self.eng.publish_nowait(
            "session.worklog", {"t": time.monotonic(), "i": i, "pad": pad}, session_id="bench"
        )


async def steady(
    target: Target, clients: Clients, *, stalled: bool = False, server: Any = None
) -> dict[str, Any]:
    """200 events/s for 2 s to 100 clients; returns the latency figures."""
    await clients.call(
        op="connect", url=target.url, token=target.token, n=CLIENTS, topic=TOPIC,
        mode=target.mode, stalled=stalled, filler=FILLER,
    )  # fmt: skip
    if stalled:
        # Fill the stalled client's socket buffers so the server's sends to it block.
        for _ in range(300):
            target.eng.publish_nowait(
                "session.worklog", {"t": time.monotonic(), "pad": "f" * 60_000}, session_id="filler"
            )
            await trio.sleep(0.002)
        await trio.sleep(0.3)
    await clients.call(op="reset")
    n = 400
    start = trio.current_time() + 0.05
    for i in range(n):
        await trio.sleep_until(start + i / 200)
        target.publish(i)
    result = await clients.call(op="collect", expect=n, timeout=30)
    if server is not None:
        result["queued"] = server.statistics().hub.queued  # what waits for the stalled client
    await clients.call(op="close")
    assert result["complete"], result
    return result


async def burst(
    target: Target, clients: Clients, n: int = 10_000, timeout: float = 170
) -> tuple[float, bool]:
    """Publish n events at once (in chunks, letting the server run between them); returns the
    seconds until the slowest client has the last one and True, or ``timeout`` and False when
    they were not all delivered by then (the time is then a lower bound)."""
    await clients.call(
        op="connect", url=target.url, token=target.token, n=CLIENTS, topic=TOPIC, mode=target.mode
    )
    await clients.call(op="reset")
    await trio.sleep(0.1)
    began = time.monotonic()
    for i in range(n):
        target.publish(i)
        if i % 250 == 249:
            await trio.lowlevel.checkpoint()
    result = await clients.call(op="collect", expect=n, timeout=timeout)
    await clients.call(op="close")
    if not result["complete"]:
        return max(timeout, time.monotonic() - began), False
    return float(result["done_at"]) - began, True


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


@contextmanager
def cpu_hog() -> Iterator[None]:
    """A CPU-bound process for the duration of the block (with two cores it takes one of them
    from the server and the clients); always killed at the end."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)  # let it get going
        yield
    finally:
        process.kill()
        process.wait()


async def variant(
    name: str, only: set[str], ours: Target, naive: Target, clients: Clients, server: Any
) -> int:
    """Measure (a), (b), (c) once; print one line per figure and return the number of failures."""
    failures = 0
    print(f"[{name}] load average before: {os.getloadavg()[0]:.2f}")
    if "a" in only:
        p99: dict[str, list[float]] = {"feed": [], "naive": []}
        p50s: dict[str, list[float]] = {"feed": [], "naive": []}
        for _ in range(REPS):
            for target in (ours, naive):
                result = await steady(target, clients)
                p99[target.name].append(result["p99"])
                p50s[target.name].append(result["p50"])
        a_ours = statistics.median(p99["feed"])
        p50 = {k: statistics.median(v) for k, v in p50s.items()}
        a_naive = statistics.median(p99["naive"])
        ok = a_ours <= a_naive and a_ours < 0.020
        failures += not ok
        print(
            f"[{name}] (a) steady 200 events/s to {CLIENTS} clients, p99 latency: feed "
            f"{ms(a_ours)} (p50 {ms(p50['feed'])}), naive {ms(a_naive)} (p50 {ms(p50['naive'])})"
            f" -> {a_ours / a_naive:.2f}x naive, target <= 1x and < 20 ms: {verdict(ok)}"
        )
    if "b" in only:
        # The baseline gets at most BURST_CAP times the feed's time of the same repetition:
        # past it, its time is a lower bound (">=") and so is the ratio.
        times: dict[str, list[float]] = {"feed": [], "naive": []}
        capped = 0
        for _ in range(REPS):
            took, complete = await burst(ours, clients)
            assert complete, "the feed did not deliver the burst within 170 s"
            times["feed"].append(took)
            took, complete = await burst(naive, clients, timeout=min(170, BURST_CAP * took))
            times["naive"].append(took)
            capped += not complete
        b_ours = statistics.median(times["feed"])
        b_naive = statistics.median(times["naive"])
        ratio = b_naive / b_ours
        ok = ratio >= 5
        failures += not ok
        bound = ">= " if capped else ""
        print(
            f"[{name}] (b) burst of 10,000 events to {CLIENTS} clients, all delivered: feed "
            f"{b_ours:.2f} s ({10_000 * CLIENTS / b_ours:,.0f} deliveries/s), naive "
            f"{bound}{b_naive:.2f} s ({capped} of {REPS} stopped at {BURST_CAP}x the feed's time) "
            f"-> {bound}{ratio:.1f}x faster, target >= 5x: {verdict(ok)}"
        )
    if "c" in only:
        runs: dict[bool, list[float]] = {False: [], True: []}
        queued: list[int] = []
        for _ in range(REPS):
            for stalled in (False, True):
                result = await steady(ours, clients, stalled=stalled, server=server)
                runs[stalled].append(result["p99"])
                if stalled:
                    queued.append(result["queued"])
        c_free = statistics.median(runs[False])
        c_stalled = statistics.median(runs[True])
        ratio = c_stalled / c_free
        ok = ratio <= 1.5
        failures += not ok
        print(
            f"[{name}] (c) one stalled client: others' p99 {ms(c_stalled)} vs {ms(c_free)} "
            f"without it -> {ratio:.2f}x, target <= 1.5x: {verdict(ok)} (at the end of each "
            f"stalled run its sends were blocked with {min(queued)}-{max(queued)} events queued)"
        )
    print(f"[{name}] load average after: {os.getloadavg()[0]:.2f}")
    return failures


async def run(only: set[str], variants: list[str]) -> int:
    config = adapters.FeedServerConfig(
        client_queue_size=20_000, history_size=20_000, max_connections_per_token=1000
    )
    token = adapters.make_token(SECRET, adapters.FeedScopes.read_all(), 3600)
    failures = 0
    async with (
        engine.open_engine(engine.EngineConfig(home=Path("/tmp/scribe-bench"))) as eng_a,
        engine.open_engine(engine.EngineConfig(home=Path("/tmp/scribe-bench"))) as eng_b,
        adapters.open_feed_server(eng_a, secret=SECRET, config=config) as server,
        trio.open_nursery() as nursery,
        open_clients() as clients,
    ):
        naive_port = await nursery.start(naive_server, eng_b)
        ours = Target("feed", eng_a, server.url, "feed", token)
        naive = Target("naive", eng_b, f"ws://127.0.0.1:{naive_port}/", "naive", token)
        print(
            f"clients: {CLIENTS} Node ws clients in one separate process; median of {REPS} runs; "
            f"{os.cpu_count()} cores (other processes skew latency: see the load averages)"
        )
        for name in variants:
            with cpu_hog() if name == "contended" else nullcontext():
                failures += await variant(name, only, ours, naive, clients, server)
        nursery.cancel_scope.cancel()
    return failures


def main() -> None:
    args = sys.argv[1:]
    variants: list[str] = [v for v in ("quiet", "contended") if v in args] or ["quiet", "contended"]
    only = {a for a in args if a in ("a", "b", "c")} or {"a", "b", "c"}
    failures = trio.run(run, only, variants)
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
