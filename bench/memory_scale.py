"""``bench/memory.py --scale``: memory at a million messages (issue 13).

Loads 1,000,000 messages (20 sessions of 50,000 on 4 repositories) and 100,000 decisions (a
fifth of them superseded) with binary COPY into an embedded PostgreSQL in a temporary home, with
the GIN indexes dropped during the load and built after it, then opens the store with the default
embedder (:class:`adapters.WordLlamaEmbedder`), which builds the IVFFlat index of its model. The
text reads like coding-session content: words drawn with Zipf weights (exponent 1.1) from a
vocabulary of about 6,000 words (English function words, verbs, nouns, snake_case identifiers,
CamelCase names, file paths), and queries are drawn the same way. The vectors of the loaded rows
are pooled from the embedder's own vectors of their words (the normalised mean, as a
static-embedding model pools its tokens: close to, not exactly, its output for the whole text);
embedding 1.1 million texts one by one on 2 shared cores would add minutes to the run. Query vectors come from the real embedder.

Figures, each with PASS/FAIL:
    rehydrate p95 < 100 ms: the five database sources the default run uses, session-scoped,
        over the store with the embedder;
    recall p95 < 50 ms: what ``scribe recall`` runs for kind ``all`` minus facts: the store's
        message and decision searches, repository-scoped, at once (as the operation runs them);
    ingest >= 2,000 messages/s: ``add_messages`` with the embedder, in batches of 500 with
        source ids (as the transcript importer writes them), into the loaded tables.
Also printed: load and index build times, the disk use of the messages table with its indexes
per million messages, and the plans of the hot searches (which indexes they use).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import struct
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import psycopg

import adapters
import engine
from engine import NewMessage

SESSIONS = 20
REPOS = 4
DIMS = 256

_FUNCTION = "the a to of in for and is it that on with this we when not be as from but or".split()
_VERBS = (
    "fix add remove rename refactor move split merge revert test run build deploy migrate cache "
    "index parse render retry cancel shield sweep embed rank load store read write open close "
    "raise catch log trace profile bench measure check validate review rebase commit push pull "
    "import export wrap unwrap flush drain spawn await lock unlock retry bump pin drop patch"
).split()
_NOUNS = (
    "session worklog summary token budget fusion ranking trigram vector embedding decision branch "
    "diff status watcher feed websocket priority limiter scheduler sweeper expiry migration query "
    "latency deadline timeout nursery thread pool connection cursor transaction rollback backoff "
    "health metrics dashboard reviewer planner ticket conflict fixture benchmark percentile "
    "throughput leak allocation handler request response payload schema column table row server "
    "client socket config setting flag option error exception traceback warning regression bug "
    "crash hang race deadlock channel queue stream buffer file path directory repo commit hook "
    "prompt model cache key value map list array string bytes json yaml toml docker ci job step "
    "lint type annotation protocol adapter engine daemon stack store backend frontend api route "
    "endpoint auth login jwt secret password user permission role tenant worker task job event "
    "signal clock timer retry quota rate limit page offset cursor snapshot version release tag"
).split()
_EXTS = ("py", "ts", "sql", "md", "toml", "json", "sh")


def vocabulary(seed: int = 13) -> list[str]:
    """About 6,000 words, most common first (function words, then a shuffled mix of verbs, nouns,
    identifiers, class names and file paths)."""
    rng = random.Random(seed)
    idents = {f"{rng.choice(_VERBS)}_{rng.choice(_NOUNS)}" for _ in range(2500)}
    idents |= {f"{rng.choice(_NOUNS)}_{rng.choice(_NOUNS)}" for _ in range(1500)}
    classes = {f"{rng.choice(_NOUNS).title()}{rng.choice(_NOUNS).title()}" for _ in range(1000)}
    files = {
        f"{rng.choice(('engine', 'adapters', 'tests', 'bench', 'src', 'lib'))}/"
        f"_{rng.choice(_NOUNS)}_{rng.choice(_NOUNS)}.{rng.choice(_EXTS)}"
        for _ in range(1500)
    }
    rest = sorted(set(_VERBS) | set(_NOUNS) | idents | classes | files)
    rng.shuffle(rest)
    # verbs and nouns are more common than any one identifier
    common = [w for w in rest if w in _VERBS or w in _NOUNS]
    return _FUNCTION + common + [w for w in rest if w not in common]


class Zipf:
    """Words drawn with weight 1 / rank ** 1.1."""

    def __init__(self, words: Sequence[str], seed: int) -> None:
        self.words = list(words)
        weights = [1.0 / (r + 1) ** 1.1 for r in range(len(words))]
        total = 0.0
        self.cum: list[float] = []
        for w in weights:
            total += w
            self.cum.append(total)
        self.rng = random.Random(seed)

    def text(self, n: int) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.cum, k=n))

    def indexed_text(self, n: int) -> tuple[str, list[int]]:
        """A text of ``n`` words and the vocabulary indices of its words."""
        picked = self.rng.choices(range(len(self.words)), cum_weights=self.cum, k=n)
        return " ".join(self.words[i] for i in picked), picked

    def query(self) -> str:
        words: list[str] = []
        while len(words) < self.rng.randint(2, 4):
            w = self.rng.choices(self.words, cum_weights=self.cum, k=1)[0]
            if w not in _FUNCTION:
                words.append(w)
        return " ".join(words)


_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)


def _field(value: bytes) -> bytes:
    return struct.pack("!i", len(value)) + value


def _vector(v: np.ndarray[Any, Any]) -> bytes:
    return struct.pack("!hh", len(v), 0) + v.astype(">f4").tobytes()


def _pooled(word_vectors: np.ndarray[Any, Any], picked: list[int]) -> np.ndarray[Any, Any]:
    """The normalised mean of the words' vectors: how a static-embedding model pools its tokens
    (close to, not exactly, what the embedder gives the whole text)."""
    v = word_vectors[picked].sum(axis=0)
    norm = float(np.linalg.norm(v))
    return v / norm if norm else v


def load(
    conn: psycopg.Connection[Any],
    messages: int,
    decisions: int,
    model: str,
    word_vectors: np.ndarray[Any, Any],
) -> None:
    """The scale data set, with binary COPY (the two tables' secondary indexes built after it)."""
    zipf = Zipf(vocabulary(), seed=1)
    sids = [f"bench-{i:02d}" for i in range(SESSIONS)]
    started = time.perf_counter()
    conn.execute("SET LOCAL statement_timeout = 0")
    conn.execute("SET LOCAL maintenance_work_mem = '2GB'")
    # Every secondary index but the unique ones is dropped for the load and built after it (the
    # GIN indexes would otherwise take each word of each row one at a time); the vector indexes
    # are built when the store opens, as they fit the rows then.
    secondary = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN"
        " ('memory_messages', 'memory_decisions') AND indexdef NOT LIKE 'CREATE UNIQUE%'"
    ).fetchall()
    for name, _ in secondary:
        conn.execute(f'DROP INDEX "{name}"'.encode())
    for i, sid in enumerate(sids):
        conn.execute(
            "INSERT INTO sessions (id, name, kind, state, priority) VALUES (%s, %s, %s, %s, 1)",
            (sid, sid, "implementation", "active"),
        )
        conn.execute(
            "INSERT INTO memory_sessions (session_id, repo) VALUES (%s, %s)",
            (sid, f"/work/repo-{i % REPOS}"),
        )
    per = messages // SESSIONS
    emodel = model.encode()
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY memory_messages (session_id, seq, role, content, content_hash, embedding,"
            " embedding_model) FROM STDIN (FORMAT BINARY)"
        ) as copy,
    ):
        copy.write(_HEADER)
        for sid in sids:
            bsid = sid.encode()
            for seq in range(1, per + 1):
                words, picked = zipf.indexed_text(zipf.rng.randint(8, 30))
                text = words.encode()
                role = b"user" if seq % 2 else b"assistant"
                copy.write(
                    struct.pack("!h", 7)
                    + _field(bsid)
                    + _field(struct.pack("!q", seq))
                    + _field(role)
                    + _field(text)
                    + _field(hashlib.sha256(text).hexdigest().encode())
                    + _field(_vector(_pooled(word_vectors, picked)))
                    + _field(emodel)
                )
        copy.write(struct.pack("!h", -1))
    conn.execute("UPDATE memory_sessions SET next_seq = %s", (per + 1,))
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY memory_decisions (session_id, title, body, status, embedding, embedding_model)"
            " FROM STDIN (FORMAT BINARY)"
        ) as copy,
    ):
        copy.write(_HEADER)
        for i in range(decisions):
            status = b"superseded" if i % 5 == 0 else (b"open" if i % 3 else b"closed")
            title, title_words = zipf.indexed_text(6)
            body, body_words = zipf.indexed_text(25)
            copy.write(
                struct.pack("!h", 6)
                + _field(sids[i % SESSIONS].encode())
                + _field(title.encode())
                + _field(body.encode())
                + _field(status)
                + _field(_vector(_pooled(word_vectors, title_words + body_words)))
                + _field(emodel)
            )
        copy.write(struct.pack("!h", -1))
    loaded = time.perf_counter()
    print(f"  rows copied in {loaded - started:.1f} s")
    for name, definition in secondary:
        t0 = time.perf_counter()
        conn.execute(definition.encode())
        print(f"  index {name} built in {time.perf_counter() - t0:.1f} s")
    conn.execute("ANALYZE")


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _slowest(queries: Sequence[str], times: Sequence[float]) -> None:
    """Print the three slowest queries and their times (information)."""
    worst = sorted(range(len(times)), key=lambda i: -times[i])[:3]
    print("    slowest: " + ", ".join(f"{queries[i]!r} {times[i] * 1000:.0f} ms" for i in worst))


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


async def _plans(db: adapters.Database, store: adapters.PostgresMemoryStore, query: str) -> None:
    """The indexes the hot searches' statements use at this size and their execution times
    (printed, not asserted)."""
    from adapters.postgres._memory_ranking import _ranking_sql, fts_words, vector_literal
    from adapters.postgres._memory_rows import DEC_COLS, MSG_COLS, scope_filter
    from adapters.postgres._memory_vector_index import MAX_PROBE_FACTOR

    embedder = store.embedder
    assert embedder is not None
    [vec] = await embedder.embed([query])
    params = {
        "q": query,
        "lim": 20,
        "sid": "bench-01",
        "repo": "/work/repo-1",
        "vec": vector_literal(vec),
        "vmin": 0.0,
    }
    for table, alias, cols, col in (
        ("memory_messages", "m", MSG_COLS, "content"),
        ("memory_decisions", "d", DEC_COLS, "search_text"),
    ):
        facts = await store._statistics.of(table)
        words = fts_words(query)
        kept = facts.full_text_query(words, await store._statistics.lexemes(words))
        params["fts"] = kept
        print(
            f"    {table}: {facts.rows:,.0f} rows; full text of {query!r} searches {kept};"
            f" trigram ranking {'used' if facts.trigram_fits else 'left out'}"
        )
        for scope in ("session", "repo"):
            filters = scope_filter(alias, session=scope == "session", repo=scope == "repo")
            if alias == "d":
                filters += " AND d.status <> 'superseded'"
            # the rankings a search of this table runs (trigram only while the table is small)
            for ranking in ("fts", "trgm", "vec") if facts.trigram_fits else ("fts", "vec"):
                statement = _ranking_sql(
                    ranking,
                    table,
                    alias,
                    cols,
                    col,
                    filters=filters,
                    model=embedder.model,
                    dims=embedder.dimensions,
                )

                probes = await store._probes.of(table) if store._probes else None

                def explain(
                    conn: psycopg.Connection[Any],
                    s: Any = statement,
                    ranking: str = ranking,
                    probes: int | None = probes,
                ) -> list[str]:
                    # what the store's vector ranking sets (_scoped_vector_search)
                    if ranking == "vec" and probes is not None:
                        conn.execute(
                            "SELECT set_config('ivfflat.probes', %s, true),"
                            " set_config('ivfflat.max_probes', %s, true),"
                            " set_config('ivfflat.iterative_scan', 'relaxed_order', true),"
                            " set_config('enable_sort', 'off', true)",
                            (str(probes), str(probes * MAX_PROBE_FACTOR)),
                        )
                    rows = conn.execute(
                        psycopg.sql.SQL("EXPLAIN (ANALYZE) ") + s, params
                    ).fetchall()
                    return [r[0] for r in rows]

                lines = await db.run_sync(explain)
                used = sorted(
                    {ln.split(" using ")[1].split()[0] for ln in lines if " using " in ln}
                    | {ln.split(" on ")[1].split()[0] for ln in lines if "Bitmap Index Scan" in ln}
                )
                took = [ln.strip() for ln in lines if ln.startswith("Execution Time")]
                print(
                    f"    plan {table} {ranking} {scope}: indexes {used}; {took[0] if took else ''}"
                )


async def scale_bench(args: argparse.Namespace, stack: Any) -> bool:
    db: adapters.Database = stack.db
    embedder = adapters.WordLlamaEmbedder()
    ok = True
    await db.execute("ALTER SYSTEM SET maintenance_work_mem = '2GB'")
    await db.execute("ALTER SYSTEM SET max_parallel_maintenance_workers = 1")
    await db.execute("SELECT pg_reload_conf()")
    t0 = time.perf_counter()
    present = await db.fetchval(
        "SELECT count(*) FROM memory_messages WHERE session_id LIKE 'bench-%%'"
    )
    words = vocabulary()
    word_vectors = np.asarray(await embedder.embed(words), dtype=np.float32)
    if present:
        print(f"the kept home holds {present:,} messages: not loaded again")
        # without the messages earlier runs' ingest added (each run measures 1M + its own)
        await db.execute("DELETE FROM memory_sessions WHERE session_id LIKE 'ingest-%%'")
    else:
        await db.run_sync(
            lambda c: load(
                c, args.scale_messages, args.scale_decisions, embedder.model, word_vectors
            )
        )
    loaded = time.perf_counter() - t0
    print(
        f"loaded {args.scale_messages:,} messages and {args.scale_decisions:,} decisions (binary"
        " COPY, vectors pooled from the embedder's word vectors) and built their indexes in"
        f" {loaded:.1f} s"
    )
    t0 = time.perf_counter()
    store = await adapters.create_memory_store(db, embedder=embedder)
    print(
        f"store opened in {time.perf_counter() - t0:.1f} s, building the IVFFlat indexes that fit"
        " the tables if they were not there"
    )
    t0 = time.perf_counter()
    blocks = await store.prewarm()  # as the daemon's background embedder does
    print(
        f"vector and full-text indexes and the newest rows loaded into the buffer cache"
        f" ({blocks // 128:,} MB) in {time.perf_counter() - t0:.1f} s, as the daemon does at start"
    )
    await db.execute("VACUUM ANALYZE memory_messages")
    await db.execute("VACUUM ANALYZE memory_decisions")
    sizes = await db.fetchrow(
        "SELECT pg_total_relation_size('memory_messages') AS total,"
        " pg_relation_size('memory_messages') AS heap,"
        " pg_indexes_size('memory_messages') AS indexes,"
        " (SELECT count(*) FROM memory_messages) AS n"
    )
    assert sizes is not None
    per_m = 1_000_000 / sizes["n"] / 2**30
    print(
        f"disk per million messages: {sizes['total'] * per_m:.2f} GiB in all (heap and TOAST"
        f" {(sizes['total'] - sizes['indexes']) * per_m:.2f} GiB, indexes"
        f" {sizes['indexes'] * per_m:.2f} GiB) (information)"
    )
    zipf = Zipf(vocabulary(), seed=99)
    queries = [zipf.query() for _ in range(args.queries)]
    await _plans(db, store, queries[0])
    sources = adapters.default_memory_sources(db, store)
    rng = random.Random(5)
    sids = [f"bench-{rng.randrange(SESSIONS):02d}" for _ in queries]
    warm = Zipf(vocabulary(), seed=98)  # warm-up queries of their own, not the measured ones
    for i in range(10):
        await engine.rehydrate(warm.query(), sources=sources, session=sids[i], timeout=2.0)
    times, statuses = [], set()
    per_source: dict[str, list[float]] = {}
    for q, sid in zip(queries, sids, strict=True):
        start = time.perf_counter()
        bundle = await engine.rehydrate(q, sources=sources, session=sid, timeout=2.0)
        times.append(time.perf_counter() - start)
        statuses |= {r.status.value for r in bundle.sources}
        for report in bundle.sources:
            per_source.setdefault(report.name, []).append(report.elapsed)
    print(
        "    each source, p50 / p95 ms: "
        + ", ".join(
            f"{name} {_pct(v, 0.5) * 1000:.0f} / {_pct(v, 0.95) * 1000:.0f}"
            for name, v in per_source.items()
        )
    )
    _slowest(queries, times)
    p95 = _pct(times, 0.95) * 1000
    verdict = p95 < 100 and statuses == {"ok"}
    ok &= verdict
    print(
        f"(s1) rehydrate at scale, 5 sources, session-scoped, {len(queries)} queries: p50"
        f" {_pct(times, 0.5) * 1000:.1f} ms, p95 {p95:.1f} ms (target p95 < 100 ms; statuses"
        f" {sorted(statuses)}) {_verdict(verdict)}"
    )
    times = []
    for i, q in enumerate(queries):
        repo = f"/work/repo-{i % REPOS}"
        start = time.perf_counter()
        await engine.concurrently(  # as the recall operation runs them
            partial(store.search_messages, q, repo=repo, limit=10),
            partial(store.search_decisions, q, repo=repo, limit=10),
        )
        times.append(time.perf_counter() - start)
    _slowest(queries, times)
    p95 = _pct(times, 0.95) * 1000
    verdict = p95 < 50
    ok &= verdict
    print(
        f"(s2) recall at scale (messages + decisions, repository-scoped), {len(queries)} queries:"
        f" p50 {_pct(times, 0.5) * 1000:.1f} ms, p95 {p95:.1f} ms (target p95 < 50 ms)"
        f" {_verdict(verdict)}"
    )
    texts = [zipf.text(zipf.rng.randint(8, 30)) for _ in range(args.scale_ingest)]
    # A new session each run: a kept home holds the earlier runs' (whose source ids would be skipped).
    ingest_session = f"ingest-{time.time_ns()}"
    await store.add_messages("ingest-warm", [NewMessage("user", "warm up the embedder")])
    start = time.perf_counter()
    for at in range(0, len(texts), 500):
        batch = [
            NewMessage("user" if i % 2 else "assistant", t, source_id=f"rec-{at + i}")
            for i, t in enumerate(texts[at : at + 500])
        ]
        await store.add_messages(ingest_session, batch)
    rate = len(texts) / (time.perf_counter() - start)
    verdict = rate >= 2000
    ok &= verdict
    print(
        f"(s3) ingest with embeddings ({embedder.model}), {len(texts):,} messages in batches of"
        f" 500: {rate:,.0f} messages/s (target >= 2,000/s) {_verdict(verdict)}"
    )
    return ok


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--scale`` options of ``bench/memory.py``."""
    parser.add_argument("--scale", action="store_true", help="the million-message run (issue 13)")
    parser.add_argument("--scale-messages", type=int, default=1_000_000, help=argparse.SUPPRESS)
    parser.add_argument("--scale-decisions", type=int, default=100_000, help=argparse.SUPPRESS)
    parser.add_argument("--scale-ingest", type=int, default=10_000, help=argparse.SUPPRESS)
    parser.add_argument(
        "--scale-home",
        help="keep the data set in this home and load it only if it is not there yet",
    )


__all__ = ["add_arguments", "scale_bench"]
