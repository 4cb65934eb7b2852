"""The background embedder on the real database: imported rows wait without vectors and the backlog
drains to zero; a model change re-embeds while search keeps answering; a cancelled batch stores
nothing; Debian's server without pgvector makes it do nothing and say so."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
import trio
import trio.testing
from memory_support import count_rows, new_session_id, open_store
from prometheus_client import CollectorRegistry, generate_latest

import adapters
import engine

_TEXTS = [
    "the scheduler admits sessions by priority with aging",
    "the feed hub conflates status topics per client",
    "a cancelled git write kills its whole process group",
    "inotify overflow means a full rescan of the tree",
    "worklog entries carry the files changed by each commit",
    "the rehydrator packs a token budgeted bundle",
]


def _new(texts: Sequence[str]) -> list[engine.NewMessage]:
    return [engine.NewMessage(role="user", content=t) for t in texts]


async def test_imported_messages_wait_then_the_backlog_drains_to_zero(fresh_pg_url: str) -> None:
    sid = new_session_id()
    async with open_store(fresh_pg_url, embedder=adapters.HashingEmbedder(64)) as (db, store):
        stored = await store.add_messages(sid, _new(_TEXTS), embed=False)
        await store.add_message(sid, "user", "typed by hand, embedded at once")
        await store.add_decision(engine.NewDecision(title="Use HNSW", session_id=sid))
        assert await count_rows(db, "memory_messages", "embedding_model IS NULL") == len(_TEXTS)
        backfill = adapters.EmbeddingBackfill(store, batch_size=4)
        assert await backfill.count_backlog() == len(_TEXTS)

        before = await store.search_messages("feed hub conflates", session_id=sid)
        assert before.hits and "vec" not in before.hits[0].ranks  # full text and trigram only

        assert await backfill.embed_batch() == 4  # the newest first
        embedded = await db.fetch(
            "SELECT id FROM memory_messages WHERE embedding_model = 'hashing-64'"
            " AND session_id = %s ORDER BY id",
            (sid,),
        )
        assert [r["id"] for r in embedded][:4] == [m.id for m in stored][-4:]
        assert await backfill.drain() == 2
        stats = backfill.statistics()
        assert (stats.backlog, stats.embedded, stats.model) == (0, 6, "hashing-64")
        assert await count_rows(db, "memory_messages", "embedding IS NULL") == 0
        after = await store.search_messages("feed hub conflates", session_id=sid)
        assert after.hits[0].item.id == stored[1].id and "vec" in after.hits[0].ranks


async def test_a_model_change_re_embeds_while_search_keeps_answering(fresh_pg_url: str) -> None:
    sid = new_session_id()
    async with open_store(fresh_pg_url, embedder=adapters.HashingEmbedder(64)) as (db, old):
        await old.add_messages(sid, _new(_TEXTS))
        await old.add_decision(engine.NewDecision(title="Conflate status topics", session_id=sid))
        new = await adapters.create_memory_store(db, embedder=adapters.HashingEmbedder(128))
        backfill = adapters.EmbeddingBackfill(new, batch_size=2)
        assert await backfill.count_backlog() == len(_TEXTS) + 1

        # Nothing of the new model yet: the vector ranking finds nothing, full text still does.
        during = await new.search_messages("rescan of the tree after overflow", session_id=sid)
        assert during.hits[0].item.content == _TEXTS[3]
        assert "vec" not in during.hits[0].ranks
        assert await backfill.embed_batch() == 3  # two messages and the decision
        partial = await new.search_messages("process group of a git write", session_id=sid)
        by_text = {h.item.content: h.ranks for h in partial.hits}
        assert "fts" in by_text[_TEXTS[2]]  # found by its words, not yet by its vector
        # the vector ranking sees only the rows re-embedded so far (the newest two)
        assert {t for t, ranks in by_text.items() if "vec" in ranks} <= set(_TEXTS[4:])

        await backfill.drain()
        assert backfill.statistics().backlog == 0
        models = await db.fetch("SELECT DISTINCT embedding_model AS m FROM memory_messages")
        assert [r["m"] for r in models] == ["hashing-128"]
        decisions = await db.fetchval("SELECT embedding_model FROM memory_decisions")
        assert decisions == "hashing-128"
        done = await new.search_messages("rescan of the tree after overflow", session_id=sid)
        assert done.hits[0].item.content == _TEXTS[3] and "vec" in done.hits[0].ranks


class _StuckEmbedder:
    """An embedder that never answers (a fault), telling when it was called."""

    def __init__(self) -> None:
        self.called = trio.Event()

    @property
    def model(self) -> str:
        return "stuck-8"

    @property
    def dimensions(self) -> int:
        return 8

    async def embed(self, texts: Sequence[str]) -> Sequence[Sequence[float]]:
        self.called.set()
        await trio.sleep_forever()
        raise AssertionError("unreachable")


async def test_cancellation_mid_batch_stores_nothing(fresh_pg_url: str) -> None:
    sid = new_session_id()
    stuck = _StuckEmbedder()
    async with open_store(fresh_pg_url, embedder=stuck) as (db, store):
        await store.add_messages(sid, _new(_TEXTS), embed=False)
        backfill = adapters.EmbeddingBackfill(store, batch_size=3)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(backfill.drain)
            await stuck.called.wait()
            nursery.cancel_scope.cancel()
        assert await count_rows(db, "memory_messages", "embedding_model IS NULL") == len(_TEXTS)
        assert backfill.statistics().embedded == 0
        assert await backfill.count_backlog() == len(_TEXTS)


async def test_an_idle_look_only_counts_the_backlog(fresh_pg_url: str) -> None:
    sid = new_session_id()
    async with open_store(fresh_pg_url, embedder=adapters.HashingEmbedder(32)) as (db, store):
        await store.add_messages(sid, _new(_TEXTS), embed=False)
        backfill = adapters.EmbeddingBackfill(store, batch_size=4)
        assert await backfill.look_once() == len(_TEXTS)  # a backlog: drained in two batches
        assert backfill.statistics().backlog == 0
        assert await count_rows(db, "memory_messages", "embedding_model IS NULL") == 0
        for _ in range(3):  # nothing to embed: one count per table, no batch, no recount
            before = db.statistics().queries
            assert await backfill.look_once() == 0
            assert db.statistics().queries - before == 2
        assert backfill.statistics().state == "idle"
        await store.add_messages(sid, _new(_TEXTS[:1]), embed=False)  # a new row is seen
        assert await backfill.look_once() == 1
        assert backfill.statistics().backlog == 0


async def test_the_backlog_is_a_metric(fresh_pg_url: str) -> None:
    sid = new_session_id()
    async with open_store(fresh_pg_url, embedder=adapters.HashingEmbedder(32)) as (_, store):
        await store.add_messages(sid, _new(_TEXTS), embed=False)
        backfill = adapters.EmbeddingBackfill(store)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(adapters.EmbeddingCollector(backfill.statistics))
        await backfill.count_backlog()
        text = generate_latest(registry).decode()
        assert 'scribe_embedding_backlog{model="hashing-32"} 6.0' in text
        assert 'scribe_embedding_embedded_total{model="hashing-32"} 0.0' in text
        await backfill.drain()
        text = generate_latest(registry).decode()
        assert 'scribe_embedding_backlog{model="hashing-32"} 0.0' in text
        assert 'scribe_embedding_embedded_total{model="hashing-32"} 6.0' in text
        assert 'scribe_embedding_available{model="hashing-32"} 1.0' in text


async def test_a_failing_batch_is_counted_and_the_service_goes_on(fresh_pg_url: str) -> None:
    class Broken:
        model, dimensions = "broken-4", 4

        async def embed(self, texts: Sequence[str]) -> Sequence[Sequence[float]]:
            await trio.lowlevel.checkpoint()
            return [[0.1, 0.2]] * len(texts)  # the wrong dimension

    async with open_store(fresh_pg_url, embedder=Broken()) as (db, store):
        await store.add_messages(new_session_id(), _new(_TEXTS[:2]), embed=False)
        backfill = adapters.EmbeddingBackfill(store, interval=0.01)
        with pytest.raises(engine.EmbeddingError, match="dims"):
            await backfill.embed_batch()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(backfill.run)
            # the service has no event to wait on: look at its counters between its retries
            while backfill.statistics().errors < 2:  # noqa: ASYNC110
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        stats = backfill.statistics()
        assert stats.state == "failing" and "dims" in (stats.last_error or "")
        assert await count_rows(db, "memory_messages", "embedding_model IS NULL") == 2


async def test_without_pgvector_it_does_nothing_and_says_so(
    fresh_debian_pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="adapters.postgres._embedding_backfill")
    async with open_store(fresh_debian_pg_url, embedder=adapters.HashingEmbedder(32)) as (_, store):
        await store.add_messages(new_session_id(), _new(_TEXTS[:2]), embed=False)
        backfill = adapters.EmbeddingBackfill(store)
        assert not backfill.available and backfill.statistics().state == "unavailable"
        assert await backfill.embed_batch() == 0 and await backfill.count_backlog() == 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(backfill.run)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    assert "background embedding is off: the database has no pgvector" in caplog.text


def test_arguments_are_checked() -> None:
    with pytest.raises(engine.InvalidArgumentError):
        adapters.EmbeddingBackfill(None, batch_size=0)  # type: ignore[arg-type]
    with pytest.raises(engine.InvalidArgumentError):
        adapters.EmbeddingBackfill(None, interval=0)  # type: ignore[arg-type]
