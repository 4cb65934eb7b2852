"""Memory benchmark (issue 7): the rehydrator, the generation cache and single-flight.

Run it as ``.venv/bin/python bench/memory.py`` (``--quick`` for a smaller data set). It starts an
embedded PostgreSQL in a temporary home, loads 10,000 messages (20 sessions of 500), 1,000
decisions, 100 worklog entries and 20 summaries with COPY, and measures, side by side in one run:

    (a) rehydrate latency over five sources (facts, messages, decisions, worklogs, summaries),
        session-scoped, p95 under 100 ms; and the same sources queried in parallel (the
        rehydrator) against one after another (the old design), median of 5 repetitions of the
        per-repetition ratio (the two sides alternate, their order flipping each repetition).
        The comparison is repeated with two sources that wait on processes added (git context
        from real git commands, an external tool through SubprocessSource). The database
        sources are CPU-bound on the same server, so on 2 cores their parallel gain is small;
        sources that wait (processes, remote services) are where asking in parallel pays;
    (b) generation cache hit latency, p50 (exact and guarded-similar hits), against a miss that
        stores a generation: exact hit p50 under 10 ms;
    (c) 100 concurrent identical misses run the generator exactly once (5 repetitions).

Every figure prints its value and PASS/FAIL; the exit status is 0 only if all pass. ``--scale``
runs the million-message benchmark of ``bench/memory_scale.py`` instead.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
import trio

import adapters
import engine
from engine import Evidence, MemorySource, SourceQuery
from engine._memory._fusion import fuse
from engine._memory._packing import pack
from engine.app import AppConfig, load_config, open_stack

sys.path.append(str(Path(__file__).resolve().parent))
from memory_scale import add_arguments, scale_bench

VOCAB = (
    "cache postgres trio session worklog summary rehydrate token budget fusion ranking trigram "
    "vector embedding decision supersede branch commit push diff status watcher inotify feed "
    "websocket priority limiter admission scheduler sweeper expiry migration index query latency "
    "deadline timeout cancel shield nursery thread pool connection cursor transaction rollback "
    "retry backoff health metrics prometheus dashboard reviewer planner coder researcher "
    "implementer backlog ticket review merge rebase conflict test hypothesis property fixture "
    "benchmark median percentile throughput memory leak profile flamegraph allocation"
).split()

SESSIONS = 20


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def _load(conn: psycopg.Connection[Any], sizes: dict[str, int], seed: int) -> None:
    rng = random.Random(seed)
    sids = [f"bench-{i:02d}" for i in range(SESSIONS)]
    with conn.cursor() as cur:
        for sid in sids:
            cur.execute(
                "INSERT INTO sessions (id, name, kind, state, priority) VALUES (%s, %s, %s, %s, 1)",
                (sid, sid, "implementation", "active"),
            )
            cur.execute("INSERT INTO memory_sessions (session_id) VALUES (%s)", (sid,))
        per = sizes["messages"] // SESSIONS
        with cur.copy(
            "COPY memory_messages (session_id, seq, role, content, content_hash, metadata)"
            " FROM STDIN"
        ) as copy:
            for sid in sids:
                for seq in range(1, per + 1):
                    text = _sentence(rng, rng.randint(8, 30))
                    role = "user" if seq % 2 else "assistant"
                    digest = hashlib.sha256(text.encode()).hexdigest()
                    copy.write_row((sid, seq, role, text, digest, "{}"))
        cur.execute("UPDATE memory_sessions SET next_seq = %s", (per + 1,))
        with cur.copy(
            "COPY memory_decisions (session_id, title, body, status, files) FROM STDIN"
        ) as copy:
            for i in range(sizes["decisions"]):
                copy.write_row(
                    (
                        sids[i % SESSIONS],
                        _sentence(rng, 5),
                        _sentence(rng, 20),
                        "open" if i % 3 else "closed",
                        [f"engine/_{rng.choice(VOCAB)}.py"],
                    )
                )
        with cur.copy("COPY worklog_entries (session_id, seq, kind, payload) FROM STDIN") as copy:
            for i in range(sizes["worklogs"]):
                payload = {"note": _sentence(rng, 15), "files": [f"{rng.choice(VOCAB)}.py"]}
                copy.write_row((sids[i % SESSIONS], i // SESSIONS + 1, "note", json.dumps(payload)))
        for sid in sids:
            cur.execute(
                "INSERT INTO summaries (session_id, version, payload) VALUES (%s, 1, %s)",
                (sid, json.dumps({"progress": _sentence(rng, 20), "next": [_sentence(rng, 5)]})),
            )
            cur.execute(
                "INSERT INTO memory_context_facts (session_id, fact_type, key, value, pinned)"
                " VALUES (%s, 'goal', 'main', %s, true)",
                (sid, json.dumps(_sentence(rng, 8))),
            )
        cur.execute("ANALYZE")


async def _sequential(
    query: str, sources: Sequence[MemorySource], session: str, budget: int
) -> int:
    """The old design: the same sources asked one after another, then the same fusion/packing."""
    results: dict[str, Sequence[Evidence]] = {}
    for source in sources:
        results[source.name] = await source.search(SourceQuery(query, session, None, 20))
    items, _ = pack(fuse(results), token_budget=budget)
    return len(items)


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _timed(fn: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def _concurrent_misses(cache: engine.GenerationCache, prompt: str) -> tuple[int, float]:
    """100 concurrent callers miss on one prompt: how many generator runs, how long."""
    runs = 0
    results: list[str] = []

    async def slow_generator() -> str:
        nonlocal runs
        runs += 1
        await trio.sleep(0.05)
        return "single answer"

    async def caller() -> None:
        got = await cache.get_or_generate(prompt, "bench-model", {}, slow_generator)
        results.append(got.text)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(100):
            nursery.start_soon(caller)
    took = time.perf_counter() - start
    assert results == ["single answer"] * 100
    return runs, took


@dataclass
class Comparison:
    """Parallel (the rehydrator) against sequential (one source after another), in ms."""

    p50: float
    p95: float
    seq_p50: float
    seq_p95: float
    ratio: float
    statuses: set[str]
    per_source: dict[str, float]

    def describe(self, label: str) -> None:
        print(
            f"    {label} one after another: p50 {self.seq_p50:.2f} ms, p95 {self.seq_p95:.2f} ms;"
            f" sequential/parallel median ratio {self.ratio:.2f}x (information)"
        )
        print(
            "    per-source p50 inside the parallel runs: "
            + ", ".join(f"{k} {v:.2f}" for k, v in self.per_source.items())
            + f" ms; slowest {max(self.per_source.values()):.2f} ms"
        )


async def _compare(
    sources: Sequence[MemorySource], queries: Sequence[tuple[str, str]], reps: int
) -> Comparison:
    # warm up (plans, caches, process start paths)
    for q, sid in queries[:5]:
        await engine.rehydrate(q, sources=sources, session=sid, timeout=2.0)
        await _sequential(q, sources, sid, 2000)
    par_p50, par_p95, seq_p50, seq_p95, ratios = [], [], [], [], []
    statuses: set[str] = set()
    per_source: dict[str, list[float]] = {}

    async def parallel() -> list[float]:
        out = []
        for q, sid in queries:
            start = time.perf_counter()
            bundle = await engine.rehydrate(q, sources=sources, session=sid, timeout=2.0)
            out.append(time.perf_counter() - start)
            assert bundle.tokens <= bundle.token_budget
            for r in bundle.sources:
                statuses.add(r.status.value)
                per_source.setdefault(r.name, []).append(r.elapsed)
        return out

    async def sequential() -> list[float]:
        out = []
        for q, sid in queries:
            start = time.perf_counter()
            await _sequential(q, sources, sid, 2000)
            out.append(time.perf_counter() - start)
        return out

    for rep in range(reps):
        if rep % 2 == 0:
            p, s = await parallel(), await sequential()
        else:
            s, p = await sequential(), await parallel()
        par_p50.append(_pct(p, 0.5))
        par_p95.append(_pct(p, 0.95))
        seq_p50.append(_pct(s, 0.5))
        seq_p95.append(_pct(s, 0.95))
        ratios.append(statistics.median(s) / statistics.median(p))
    ms = 1000.0
    return Comparison(
        p50=statistics.median(par_p50) * ms,
        p95=statistics.median(par_p95) * ms,
        seq_p50=statistics.median(seq_p50) * ms,
        seq_p95=statistics.median(seq_p95) * ms,
        ratio=statistics.median(ratios),
        statuses=statuses,
        per_source={k: statistics.median(v) * ms for k, v in per_source.items()},
    )


async def _run(*argv: str, cwd: Path) -> str:
    done = await trio.run_process(list(argv), cwd=cwd, capture_stdout=True, capture_stderr=True)
    return done.stdout.decode()


# An external tool speaking the SubprocessSource protocol: grep a notes file for the query's
# first word, print JSON lines.
_TOOL = (
    'read -r request; word=$(printf "%s" "$request" | sed -E \'s/.*"query": "([a-z]+).*/\\1/\'); '
    'grep -n -i -m 5 -- "$word" notes.txt | while IFS= read -r line; do '
    'printf \'{"id": "%s", "text": "%s"}\\n\' "${line%%:*}" "${line#*:}"; done; true'
)


async def _process_sources(repo: Path) -> list[MemorySource]:
    """A git context source (real git commands on a small repository) and an external tool."""
    rng = random.Random(5)
    await _run("git", "init", "-q", "-b", "feat/B-1042-memory", cwd=repo)
    for i in range(20):
        (repo / f"f{i}.py").write_text(_sentence(rng, 40) + "\n")
        await _run("git", "add", ".", cwd=repo)
        await _run(
            "git",
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-q",
            "-m",
            _sentence(rng, 6),
            cwd=repo,
        )
    (repo / "f0.py").write_text("changed\n")
    (repo / "notes.txt").write_text("\n".join(_sentence(rng, 12) for _ in range(200)) + "\n")

    async def git_sections(session_id: str | None) -> dict[str, str]:
        env = ("-c", "core.optionalLocks=false")
        return {
            "branch": await _run("git", *env, "rev-parse", "--abbrev-ref", "HEAD", cwd=repo),
            "status": await _run("git", *env, "status", "--porcelain=v2", cwd=repo),
            "log": await _run("git", *env, "log", "--oneline", "-10", cwd=repo),
        }

    return [
        engine.GitContextSource(git_sections),
        adapters.SubprocessSource("tool", ["sh", "-c", _TOOL], cwd=repo),
    ]


async def bench(args: argparse.Namespace) -> bool:
    sizes = (
        {"messages": 2000, "decisions": 200, "worklogs": 100}
        if args.quick
        else {"messages": 10_000, "decisions": 1_000, "worklogs": 100}
    )
    rng = random.Random(7)
    ok = True
    with contextlib.ExitStack() as keep:
        home = args.scale_home or keep.enter_context(
            tempfile.TemporaryDirectory(prefix="scribe-bench-")
        )
        config = AppConfig(
            home=Path(home), database_url=load_config().database_url, pool_size=6, feed=False
        )
        async with open_stack(config, scribe=False) as stack:
            if args.scale:
                return await scale_bench(args, stack)
            db = stack.db
            t0 = time.perf_counter()
            await db.run_sync(lambda conn: _load(conn, sizes, 1))
            print(
                f"loaded {sizes['messages']} messages, {sizes['decisions']} decisions, "
                f"{sizes['worklogs']} worklogs in {time.perf_counter() - t0:.2f} s"
            )
            sources = stack.memory_sources
            queries = [
                (_sentence(rng, rng.randint(2, 4)), f"bench-{rng.randrange(SESSIONS):02d}")
                for _ in range(args.queries)
            ]

            # (a) parallel vs sequential, alternating, order flipped each repetition
            db_only = await _compare(sources, queries, args.reps)
            verdict = db_only.p95 < 100 and db_only.statuses == {"ok"}
            ok &= verdict
            print(
                f"(a) rehydrate, 5 database sources, {len(queries)} queries x {args.reps} reps: "
                f"p50 {db_only.p50:.2f} ms, p95 {db_only.p95:.2f} ms (target p95 < 100 ms; "
                f"source statuses {sorted(db_only.statuses)}) {'PASS' if verdict else 'FAIL'}"
            )
            db_only.describe("5 database sources")
            with tempfile.TemporaryDirectory(prefix="scribe-bench-repo-") as repo:
                extra = await _process_sources(Path(repo))
                full = await _compare([*sources, *extra], queries, args.reps)
            print(
                f"    with git context and an external tool (7 sources): p50 {full.p50:.2f} ms, "
                f"p95 {full.p95:.2f} ms; source statuses {sorted(full.statuses)} (information)"
            )
            full.describe("7 sources")

            # (b) generation cache hit latency
            cache = stack.generation_cache  # similarity threshold 0.8
            prompts = [f"Summarize session bench-{i:02d}: " + _sentence(rng, 25) for i in range(40)]

            async def answer() -> str:
                return "generated text " * 20

            miss_times = [
                await _timed(lambda p=p: cache.get_or_generate(p, "bench-model", {"t": 0}, answer))
                for p in prompts
            ]
            exact_p50s, similar_p50s = [], []
            for _ in range(args.reps):
                exact = [
                    await _timed(
                        lambda p=p: cache.get_or_generate(p, "bench-model", {"t": 0}, answer)
                    )
                    for p in prompts
                ]
                similar = [
                    await _timed(
                        lambda p=p: cache.get_or_generate(
                            p + " please", "bench-model", {"t": 0}, answer
                        )
                    )
                    for p in prompts[:10]
                ]
                exact_p50s.append(_pct(exact, 0.5))
                similar_p50s.append(_pct(similar, 0.5))
            stats = cache.statistics()
            hit_p50 = statistics.median(exact_p50s) * 1000
            verdict = hit_p50 < 10 and stats.similar_hits > 0
            ok &= verdict
            print(
                f"(b) generation cache: exact hit p50 {hit_p50:.2f} ms, similar hit p50 "
                f"{statistics.median(similar_p50s) * 1000:.2f} ms, miss+store p50 "
                f"{_pct(miss_times, 0.5) * 1000:.2f} ms; hits {stats.exact_hits} exact / "
                f"{stats.similar_hits} similar, misses {stats.misses} "
                f"(target exact hit p50 < 10 ms) {'PASS' if verdict else 'FAIL'}"
            )

            # (c) 100 concurrent identical misses -> one generator run
            runs_per_rep = [
                await _concurrent_misses(cache, f"concurrent prompt {rep} " + _sentence(rng, 10))
                for rep in range(args.reps)
            ]
            verdict = all(r == 1 for r, _ in runs_per_rep)
            ok &= verdict
            print(
                f"(c) 100 concurrent identical misses x {args.reps}: generator runs "
                f"{[r for r, _ in runs_per_rep]}, median wall {statistics.median(t for _, t in runs_per_rep) * 1000:.1f} ms "
                f"(target exactly 1 each) {'PASS' if verdict else 'FAIL'}"
            )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data set")
    parser.add_argument("--reps", type=int, default=5, help="repetitions (>= 5 for medians)")
    parser.add_argument("--queries", type=int, default=60, help="queries per repetition")
    add_arguments(parser)
    args = parser.parse_args()
    ok = trio.run(bench, args)
    print("ALL PASS" if ok else "SOME FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
