"""The IVFFlat index of a model: none below the rows it needs, built once a table has them,
built again (and the old one dropped) as the table grows, an HNSW index of an earlier version
replaced; when several processes open stores at once, an index another connection is building is
left to that build (not dropped, not waited for), and one a failed build left invalid is built
again."""

from __future__ import annotations

import psycopg
import trio
from pg_support import create_database, drop_database

import adapters
import engine
from adapters.postgres._memory_vector_index import (
    VectorProbes,
    ensure_vector_indexes,
    lists_for,
    probes_for,
    vector_index_name,
    vector_indexes,
)

_VALID = (
    "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " WHERE c.relname = %s"
)


def test_lists_and_probes_follow_the_rows() -> None:
    assert [lists_for(n) for n in (0, 999, 10_000, 1_000_000, 4_000_000)] == [1, 1, 10, 1000, 2000]
    assert [probes_for(n) for n in (1, 10, 1000, 2000)] == [1, 1, 60, 120]


async def _building(db: adapters.Database, name: str) -> bool:
    model = adapters.HashingEmbedder(32).model
    return any(
        x.name == name and x.building
        for x in await vector_indexes(db, "memory_messages", model, 32)
    )


async def test_an_index_being_built_elsewhere_is_left_to_that_build(pg_url: str) -> None:
    url = create_database(pg_url, "vindex")
    embedder = adapters.HashingEmbedder(32)
    name = vector_index_name("memory_messages", embedder.model, 32, 1)
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
                    built.extend(await ensure_vector_indexes(db, embedder.model, 32, min_rows=0))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(build)
                    with trio.fail_after(60):
                        while not await _building(db, name):  # noqa: ASYNC110 (another process)
                            await trio.sleep(0.05)
                    # Another store opens meanwhile: it neither drops the index nor waits (a
                    # DROP INDEX CONCURRENTLY would wait for the blocker too: the bound fails it).
                    with trio.fail_after(30):
                        store = await adapters.create_memory_store(
                            db, embedder=embedder, vector_index_min_rows=0
                        )
                    assert store.vector_status is engine.VectorStatus.USED
                    assert await _building(db, name)
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
    name = vector_index_name("memory_messages", embedder.model, 32, 1)
    try:
        async with adapters.open_database(url, pool_size=4) as db:
            await adapters.create_memory_store(db, embedder=embedder, vector_index_min_rows=0)
            # What an interrupted CREATE INDEX CONCURRENTLY leaves: the index, marked invalid.
            await db.execute(
                "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", (name,)
            )
            assert not await _building(db, name)
            await adapters.create_memory_store(db, embedder=embedder, vector_index_min_rows=0)
            assert await db.fetchval(_VALID, (name,)) is True
    finally:
        drop_database(url)


async def test_the_index_comes_with_the_rows_and_is_built_again_as_they_grow(pg_url: str) -> None:
    url = create_database(pg_url, "vindex")
    embedder = adapters.HashingEmbedder(32)
    model = embedder.model
    try:
        async with adapters.open_database(url, pool_size=4) as db:
            store = await adapters.create_memory_store(
                db, embedder=embedder, vector_index_min_rows=1000
            )

            added = 0

            async def add(n: int) -> None:
                nonlocal added
                for _ in range(0, n, 500):
                    await store.add_messages(
                        "grow", [engine.NewMessage("user", f"note {added + i}") for i in range(500)]
                    )
                    added += 500
                await db.execute("ANALYZE memory_messages")

            await add(500)
            assert await store.ensure_vector_indexes() == []  # 500 rows: an exact scan is enough
            assert await vector_indexes(db, "memory_messages", model, 32) == []
            assert await VectorProbes(db, model, 32).of("memory_messages") is None
            await add(1000)  # 1,500 rows: one list
            one = vector_index_name("memory_messages", model, 32, 1)
            assert await store.ensure_vector_indexes() == [one]
            assert await store.ensure_vector_indexes() == []  # it fits: nothing to do
            await add(1000)  # 2,500 rows: two lists, twice what the index has
            two = vector_index_name("memory_messages", model, 32, 2)
            assert await store.ensure_vector_indexes() == [two]
            [index] = await vector_indexes(db, "memory_messages", model, 32)
            assert (index.name, index.method, index.valid, index.lists) == (two, "ivfflat", True, 2)
            assert await VectorProbes(db, model, 32).of("memory_messages") == 1
            hits = (await store.search_messages("note 2042", session_id="grow", limit=3)).hits
            # the vector ranking ran, through the index: the same text has the same vector
            [same] = [h for h in hits if h.item.content == "note 2042"]
            assert same.ranks.get("vec") == 1
    finally:
        drop_database(url)


async def test_an_hnsw_index_of_an_earlier_version_is_replaced(pg_url: str) -> None:
    url = create_database(pg_url, "vindex")
    embedder = adapters.HashingEmbedder(32)
    suffix = vector_index_name("memory_messages", embedder.model, 32, 1).split("_ivf1", 1)[1]
    hnsw = f"memory_msg_hnsw{suffix}"
    try:
        async with adapters.open_database(url, pool_size=4) as db:
            await db.execute_unbounded(
                f"CREATE INDEX {hnsw} ON memory_messages USING hnsw"  # type: ignore[arg-type]
                " ((embedding::vector(32)) vector_cosine_ops)"
                f" WHERE embedding_model = '{embedder.model}' AND vector_dims(embedding) = 32"
            )
            found = await vector_indexes(db, "memory_messages", embedder.model, 32)
            assert [(x.name, x.method) for x in found] == [(hnsw, "hnsw")]
            # below the rows an IVFFlat index needs, the HNSW index stays (better than none)
            await adapters.create_memory_store(db, embedder=embedder)
            assert await db.fetchval(_VALID, (hnsw,)) is True
            await adapters.create_memory_store(db, embedder=embedder, vector_index_min_rows=0)
            found = await vector_indexes(db, "memory_messages", embedder.model, 32)
            assert [(x.name, x.method) for x in found] == [
                (vector_index_name("memory_messages", embedder.model, 32, 1), "ivfflat")
            ]
    finally:
        drop_database(url)


async def test_the_background_embedder_builds_the_index_a_store_left_out(pg_url: str) -> None:
    url = create_database(pg_url, "vindex")
    embedder = adapters.HashingEmbedder(32)
    name = vector_index_name("memory_messages", embedder.model, 32, 1)
    try:
        async with adapters.open_database(url, pool_size=4, statement_timeout=5.0) as db:
            store = await adapters.create_memory_store(
                db, embedder=embedder, build_indexes=False, vector_index_min_rows=0
            )
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
                (await store.search_messages("stored before the index", limit=1))
                .hits[0]
                .item.content
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
            store = await adapters.create_memory_store(
                db, embedder=embedder, vector_index_min_rows=0
            )
            await store.add_messages(
                "warm", [engine.NewMessage("user", f"message {i}") for i in range(200)]
            )
            blocks = await store.prewarm_vector_indexes()
            sizes = await db.fetchval(
                "SELECT sum(pg_relation_size(c.oid)) / 8192 FROM pg_class c"
                " WHERE c.relname = ANY(%s)",
                (
                    [
                        vector_index_name(t, embedder.model, 32, 1)
                        for t in ("memory_messages", "memory_decisions")
                    ],
                ),
            )
            assert blocks == sizes and blocks > 0
            plain = await adapters.create_memory_store(db)  # no embedder: nothing to load
            assert await plain.prewarm_vector_indexes() == 0
            # the daemon loads the full-text indexes and the tables too, within the cache
            rest = await db.fetchval(
                "SELECT sum(pg_relation_size(c)) / 8192 FROM unnest(%s::regclass[]) AS c",
                (
                    [
                        "memory_messages_tsv",
                        "memory_decisions_live_tsv",
                        "memory_decisions",
                        "memory_messages",
                    ],
                ),
            )
            assert await store.prewarm() == sizes + rest
            assert await plain.prewarm() == rest
    finally:
        drop_database(url)
