"""The rehydrator over real sources: PostgreSQL memory, worklogs, summaries, subprocess tools."""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg.types.json
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memory_support import backdate, new_session_id, open_store

import adapters
import engine
from engine import NewDecision, NewMessage, SourceQuery, SourceStatus

# ---------------------------------------------------------------------------- subprocess tools

TOOL = """
import json, os, subprocess, sys, time
request = json.load(sys.stdin)
mode = sys.argv[1]
if mode == "ok":
    for i in range(5):
        print(json.dumps({"id": f"doc-{i}", "text": f"{request['query']} result {i}", "rank": i + 1}))
elif mode == "slow":
    child = subprocess.Popen(["sleep", "60"])
    with open(sys.argv[2], "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    time.sleep(60)
elif mode == "fail":
    print("index missing", file=sys.stderr)
    sys.exit(3)
elif mode == "garbage":
    print("not json")
"""


@pytest.fixture
def tool(tmp_path: Path) -> list[str]:
    script = tmp_path / "tool.py"
    script.write_text(TOOL)
    return [sys.executable, str(script)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_subprocess_source_reads_json_lines(tool: list[str]) -> None:
    source = adapters.SubprocessSource("tool", [*tool, "ok"])
    items = await source.search(SourceQuery("needle", None, None, 3))
    assert [(e.id, e.text, dict(e.ranks)) for e in items] == [
        (f"doc-{i}", f"needle result {i}", {"tool": i + 1}) for i in range(3)
    ]


async def test_slow_tool_is_killed_with_its_children_at_the_deadline(
    tool: list[str], tmp_path: Path
) -> None:
    pid_file = tmp_path / "pids"
    bundle = await engine.rehydrate(
        "q",
        sources=[
            adapters.SubprocessSource("slow", [*tool, "slow", str(pid_file)]),
            adapters.SubprocessSource("fast", [*tool, "ok"]),
        ],
        timeout=5.0,
        source_timeouts={"slow": 1.0},
    )
    assert bundle.source("slow").status is SourceStatus.TIMEOUT
    assert bundle.source("fast").status is SourceStatus.OK
    assert bundle.source("fast").count == 5
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 2
    with trio.fail_after(5):
        # polling: the orphaned grandchild is reaped by init, which nothing here can await
        while any(_alive(p) for p in pids):  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_failing_and_garbled_tools_are_reported(tool: list[str]) -> None:
    bundle = await engine.rehydrate(
        "q",
        sources=[
            adapters.SubprocessSource("fail", [*tool, "fail"]),
            adapters.SubprocessSource("garbage", [*tool, "garbage"]),
        ],
        timeout=10.0,
    )
    fail, garbage = bundle.sources
    assert fail.status is SourceStatus.ERROR and "exited with 3: index missing" in (
        fail.error or ""
    )
    assert garbage.status is SourceStatus.ERROR and "line 1" in (garbage.error or "")
    with pytest.raises(engine.InvalidArgumentError):
        adapters.SubprocessSource("x", [])


# ------------------------------------------------------------------------ PostgreSQL sources


async def _seed(db: adapters.Database, store: adapters.PostgresMemoryStore, sid: str) -> None:
    await db.execute(
        "INSERT INTO sessions (id, name, kind, state, priority) VALUES (%s, %s, %s, %s, %s)",
        (sid, "memory test", "implementation", "active", 1),
    )
    for seq, (kind, payload) in enumerate(
        [
            ("files_changed", {"files": ["engine/_rehydrate.py"], "note": "rehydrator fusion"}),
            ("commit", {"message": "Add reciprocal rank fusion to the rehydrator"}),
            ("note", {"text": "remember to benchmark the parallel sources"}),
        ],
        start=1,
    ):
        await db.execute(
            "INSERT INTO worklog_entries (session_id, seq, kind, payload) VALUES (%s, %s, %s, %s)",
            (sid, seq, kind, psycopg.types.json.Jsonb(payload)),
        )
    for version, progress in ((1, "started the rehydrator"), (2, "rehydrator fuses rankings")):
        await db.execute(
            "INSERT INTO summaries (session_id, version, payload) VALUES (%s, %s, %s)",
            (
                sid,
                version,
                psycopg.types.json.Jsonb(
                    {"progress": progress, "next": ["bench"], "metadata": {"last_seq": 3}}
                ),
            ),
        )
    await store.add_messages(
        sid,
        [
            NewMessage("user", "How should the rehydrator fuse rankings from sources?"),
            NewMessage("assistant", "Use reciprocal rank fusion over full text and trigram."),
            NewMessage("user", "What about lunch?"),
        ],
    )
    await store.add_decision(
        NewDecision(
            "Fuse rankings with RRF", "k = 60", session_id=sid, files=["engine/_rehydrate.py"]
        )
    )
    await store.set_fact(sid, "goal", "issue", "ship the memory issue", pinned=True)


async def _citation_exists(db: adapters.Database, source: str, item_id: str, sid: str) -> bool:
    if source == "messages":
        q = "SELECT count(*) FROM memory_messages WHERE id = %s AND session_id = %s"
        return bool(await db.fetchval(q, (int(item_id), sid)))
    if source == "decisions":
        q = "SELECT count(*) FROM memory_decisions WHERE id = %s AND session_id = %s"
        return bool(await db.fetchval(q, (int(item_id), sid)))
    if source == "worklogs":
        q = "SELECT count(*) FROM worklog_entries WHERE id = %s AND session_id = %s"
        return bool(await db.fetchval(q, (int(item_id), sid)))
    if source == "summaries":
        session, version = item_id.rsplit("/", 1)
        q = "SELECT count(*) FROM summaries WHERE session_id = %s AND version = %s"
        return session == sid and bool(await db.fetchval(q, (session, int(version))))
    if source == "facts":
        fact_type, key = item_id.split("/", 1)
        q = "SELECT count(*) FROM memory_context_facts WHERE session_id = %s AND fact_type = %s AND key = %s"
        return bool(await db.fetchval(q, (sid, fact_type, key)))
    return False


async def test_rehydrate_over_postgres_cites_real_rows(fresh_pg_url: str) -> None:
    # A database of its own: this test adds rows to the session registry's tables.
    sid = new_session_id()
    embedder = adapters.HashingEmbedder(64)
    async with open_store(fresh_pg_url, embedder=embedder, min_vector_similarity=0.3) as (
        db,
        store,
    ):
        await _seed(db, store, sid)
        sources = adapters.default_memory_sources(db, store)
        bundle = await engine.rehydrate(
            "how does the rehydrator fuse rankings", sources=sources, session=sid, timeout=10.0
        )
        assert [r.status for r in bundle.sources] == [SourceStatus.OK] * 5
        assert bundle.items[0].citation == "facts:goal/issue" and bundle.items[0].pinned
        cited = {i.evidence.source for i in bundle.items}
        assert cited == {"facts", "messages", "decisions", "worklogs", "summaries"}
        for item in bundle.items:
            assert await _citation_exists(db, item.evidence.source, item.evidence.id, sid), item
        # only the latest summary version is offered
        summaries = [i.evidence for i in bundle.items if i.evidence.source == "summaries"]
        assert [e.id for e in summaries] == [f"{sid}/2"]
        # what the summary says, not its bookkeeping
        assert "rehydrator fuses rankings" in summaries[0].text
        assert "last_seq" not in summaries[0].text
        assert "lunch" not in bundle.text
        small = await engine.rehydrate(
            "rehydrator", sources=sources, session=sid, token_budget=40, timeout=10.0
        )
        assert small.tokens <= 40 and any(d.reason.value == "budget" for d in small.dropped)


async def test_a_source_failing_on_the_database_does_not_fail_the_bundle(pg_url: str) -> None:
    sid = new_session_id()
    async with open_store(pg_url) as (db, store):
        await store.add_message(sid, "user", "the answer is in the messages")

        async def broken(query: SourceQuery) -> list[engine.Evidence]:
            await db.fetch("SELECT * FROM no_such_table")
            return []  # pragma: no cover

        async def stuck(query: SourceQuery) -> list[engine.Evidence]:
            await db.fetch("SELECT pg_sleep(30)")
            return []  # pragma: no cover

        bundle = await engine.rehydrate(
            "answer messages",
            sources=[
                engine.MessagesSource(store),
                engine.CallableSource("broken", broken),
                engine.CallableSource("stuck", stuck),
            ],
            session=sid,
            timeout=10.0,
            source_timeouts={"stuck": 0.5},
        )
        assert [r.status for r in bundle.sources] == [
            SourceStatus.OK,
            SourceStatus.ERROR,
            SourceStatus.TIMEOUT,
        ]
        assert "QueryError" in (bundle.source("broken").error or "")
        assert [i.citation for i in bundle.items] == [
            "messages:" + str((await store.get_messages(sid))[0].id)
        ]
        # the stuck query was cancelled on the server, not left running
        assert not await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'"
            " AND state = 'active'"
        )


async def test_payload_text_flattens_json() -> None:
    from adapters.postgres._memory_sources import payload_text

    text = payload_text({"files": ["a.py", "b.py"], "meta": {"lines": 3, "empty": ""}, "n": None})
    assert text == "files: a.py, b.py; meta.lines: 3"
    assert len(payload_text({"t": "x" * 5000})) <= 1200
    assert payload_text([]) == ""
    assert payload_text(["a", None, "b"]) == "a, b"
    assert payload_text({"x": [{"y": 1}, {"y": 2}]}) == "x.y: 1; x.y: 2"


_WORDS = ["cache", "rehydrate", "postgres", "budget", "token", "fusion", "trio", "sweeper", "feed"]
_texts = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=12).map(" ".join)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.lists(_texts, min_size=1, max_size=12),
    decisions=st.lists(_texts, max_size=4),
    query=st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3).map(" ".join),
    budget=st.integers(5, 400),
)
def test_citations_point_at_real_rows_property(
    pg_url: str, messages: list[str], decisions: list[str], query: str, budget: int
) -> None:
    async def main() -> None:
        sid = new_session_id("prop")
        async with open_store(pg_url) as (db, store):
            stored = await store.add_messages(sid, [NewMessage("user", t) for t in messages])
            for title in decisions:
                await store.add_decision(NewDecision(title, session_id=sid))
            bundle = await engine.rehydrate(
                query,
                sources=adapters.default_memory_sources(db, store),
                session=sid,
                token_budget=budget,
                timeout=10.0,
            )
            assert all(r.status is SourceStatus.OK for r in bundle.sources)
            assert bundle.tokens <= budget
            assert len({i.citation for i in bundle.items}) == len(bundle.items)
            by_id = {str(m.id): m for m in stored}
            for item in bundle.items:
                source, item_id = item.evidence.source, item.evidence.id
                assert await _citation_exists(db, source, item_id, sid), item.citation
                if source == "messages":
                    assert item.evidence.text == f"user: {by_id[item_id].content}"
                else:
                    title = await db.fetchval(
                        "SELECT title FROM memory_decisions WHERE id = %s", (int(item_id),)
                    )
                    assert source == "decisions" and title in item.evidence.text

    trio.run(main)


async def test_rehydrator_serves_bundles_from_the_retrieval_cache(pg_url: str) -> None:
    sid = new_session_id()
    async with open_store(pg_url) as (db, store):
        await store.add_message(sid, "user", "the cache keeps rehydrated bundles briefly")
        flaky_calls = 0

        async def flaky(query: SourceQuery) -> list[engine.Evidence]:
            nonlocal flaky_calls
            flaky_calls += 1
            if flaky_calls == 1:
                raise RuntimeError("first call fails")
            return []

        rehydrator = engine.Rehydrator(
            [engine.MessagesSource(store), engine.CallableSource("flaky", flaky)],
            timeout=10.0,
            cache=store,
            cache_ttl=60,
        )
        degraded = await rehydrator.rehydrate("rehydrated bundles", session=sid)
        assert degraded.source("flaky").status is SourceStatus.ERROR and not degraded.cached
        first = await rehydrator.rehydrate("rehydrated bundles", session=sid)
        assert not first.cached  # the degraded bundle was not cached
        await store.add_message(sid, "user", "newer rehydrated bundles note")
        second = await rehydrator.rehydrate("rehydrated bundles", session=sid)
        assert second.cached and second.digest == first.digest and flaky_calls == 2
        other_role = await rehydrator.rehydrate("rehydrated bundles", session=sid, role="coder")
        assert not other_role.cached
        await backdate(db, "memory_retrieval_cache", 61, "expires_at > now()")
        fresh = await rehydrator.rehydrate("rehydrated bundles", session=sid)
        assert not fresh.cached and "newer rehydrated bundles note" in fresh.text
