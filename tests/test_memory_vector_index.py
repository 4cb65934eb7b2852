"""The HNSW index of a model, when several processes open stores at once: an index another
connection is building is left to that build (not dropped, not waited for), and one a failed build
left invalid is built again."""

from __future__ import annotations

import psycopg
import trio
from pg_support import create_database, drop_database

import adapters
import engine
from adapters.postgres._memory_vector_index import (
    _being_built,
    ensure_vector_indexes,
    vector_index_name,
)

_VALID = (
    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " WHERE c.relname = %s"
)


async def test_an_index_being_built_elsewhere_is_left_to_that_build(pg_url: str) -> None:
    url = create_database(pg_url, "vindex")
    embedder = adapters.HashingEmbedder(32)
    name = vector_index_name("memory_messages", embedder.model, 32)
    try:
        async with adapters.open_database(url, pool_size=4) as db:
            # A writer's open transaction holds the concurrent build up after it has made the
            # index (invalid, building), as a long transaction of another process would.
            blocker = await trio.to_thread.run_sync(psycopg.connect, url)
            try:
                await trio.to_thread.run_sync(
                    blocker.execute, "LOCK TABLE memory_messages IN ROW EXCLUSIVE MODE"
                )
                built: list[str] = []

                async def build() -> None:
                    built.extend(await ensure_vector_indexes(db, embedder.model, 32))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(build)
                    with trio.fail_after(60):
                        while not await _being_built(db, name):  # noqa: ASYNC110 (another process)
                            await trio.sleep(0.05)
                    # Another store opens meanwhile: it neither drops the index nor waits (a
                    # DROP INDEX CONCURRENTLY would wait for the blocker too: the bound fails it).
                    with trio.fail_after(30):
                        store = await adapters.create_memory_store(db, embedder=embedder)
                    assert store.vector_status is engine.VectorStatus.USED
                    assert await _being_built(db, name)
                    assert await db.fetchval(_VALID, (name,)) is False
                    await trio.to_thread.run_sync(blocker.rollback)
            finally:
                await trio.to_thread.run_sync(blocker.close)
            assert name in built  # the first build was not cancelled by the second store
            assert await db.fetchval(_VALID, (name,)) is True
    finally:
        drop_database(url)


async def test_an_index_a_failed_build_left_invalid_is_built_again(pg_url: str) -> None:
    url = create_database(pg_url, "vindex")
    embedder = adapters.HashingEmbedder(32)
    name = vector_index_name("memory_messages", embedder.model, 32)
    try:
        async with adapters.open_database(url, pool_size=4) as db:
            await adapters.create_memory_store(db, embedder=embedder)
            # What an interrupted CREATE INDEX CONCURRENTLY leaves: the index, marked invalid.
            await db.execute(
                "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", (name,)
            )
            assert not await _being_built(db, name)
            await adapters.create_memory_store(db, embedder=embedder)
            assert await db.fetchval(_VALID, (name,)) is True
    finally:
        drop_database(url)


async def test_the_background_embedder_builds_the_index_a_store_left_out(pg_url: str) -> None:
    url = create_database(pg_url, "vindex")
    embedder = adapters.HashingEmbedder(32)
    name = vector_index_name("memory_messages", embedder.model, 32)
    try:
        async with adapters.open_database(url, pool_size=4, statement_timeout=5.0) as db:
            store = await adapters.create_memory_store(db, embedder=embedder, build_indexes=False)
            assert await db.fetchval(_VALID, (name,)) is None
            await store.add_message("bg", "user", "stored before the index exists")
            backfill = adapters.EmbeddingBackfill(store, interval=0.05)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(backfill.run)
                with trio.fail_after(60):
                    while not await db.fetchval(_VALID, (name,)):  # noqa: ASYNC110 (the server's)
                        await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
            assert await db.fetchval(_VALID, (name,)) is True
            assert "stored before" in (
                (await store.search_messages("stored before the index", limit=1)).hits[0].item.content
            )
            # The statement timeout is set back on the connection the build used.
            assert await db.fetchval("SHOW statement_timeout") == "5s"
    finally:
        drop_database(url)


async def test_the_indexes_are_loaded_into_the_buffer_cache(pg_url: str) -> None:
    url = create_database(pg_url, "vindex")
    embedder = adapters.HashingEmbedder(32)
    try:
        async with adapters.open_database(url, pool_size=2) as db:
            assert await db.fetchval(
                "SELECT count(*) FROM pg_extension WHERE extname = 'pg_prewarm'"
            )
            store = await adapters.create_memory_store(db, embedder=embedder)
            await store.add_messages(
                "warm", [engine.NewMessage("user", f"message {i}") for i in range(200)]
            )
            blocks = await store.prewarm_vector_indexes()
            sizes = await db.fetchval(
                "SELECT sum(pg_relation_size(c.oid)) / 8192 FROM pg_class c"
                " WHERE c.relname = ANY(%s)",
                (
                    [
                        vector_index_name(t, embedder.model, 32)
                        for t in ("memory_messages", "memory_decisions")
                    ],
                ),
            )
            assert blocks == sizes and blocks > 0
            plain = await adapters.create_memory_store(db)  # no embedder: nothing to load
            assert await plain.prewarm_vector_indexes() == 0
    finally:
        drop_database(url)
