"""What the in-memory parts offer beyond their protocols: the controls a test sets states with."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import engine
import engine.testing


async def test_fake_git_states_set_directly() -> None:
    repo = engine.testing.FakeGit("/memory/repo")
    repo.write_file("a", "1\n")
    await repo.add(all=True)
    first = await repo.commit("first")
    repo.write_file("a", "2\n")
    await repo.add(["a"])
    second = await repo.commit("second")

    repo.set_upstream("origin/main", ahead=1, behind=0)
    branch = (await repo.status()).branch
    assert (branch.upstream, branch.ahead, branch.behind) == ("origin/main", 1, 0)
    repo.set_upstream(None)
    assert (await repo.status()).branch.upstream is None

    conflict = engine.Status(
        engine.BranchInfo(oid=second, head="main"),
        (engine.UnmergedEntry("a", "U", "U"), engine.UntrackedEntry("b")),
    )
    repo.set_status(conflict)
    assert (await repo.status()).conflicts == (engine.UnmergedEntry("a", "U", "U"),)
    assert [e.path for e in (await repo.status(paths=["b"])).entries] == ["b"]
    repo.set_status(None)
    assert (await repo.status()).clean

    repo.detach(first)
    assert await repo.current_branch() is None and await repo.head() == first
    assert await repo.worktree.read_text("a") == "1\n"
    assert (await repo.status()).branch.detached
    repo.checkout("main")
    assert await repo.head() == second
    assert await repo.open_at(repo.root / "sub" / "..") is repo
    with pytest.raises(engine.NotARepositoryError):
        await repo.open_at("/memory")
    with pytest.raises(engine.InvalidArgumentError):
        repo.delete_file("missing")
    with pytest.raises(engine.InvalidArgumentError):
        repo.checkout("no-such-branch")


async def test_fed_watchers_are_found_and_closed() -> None:
    watchers = engine.testing.FakeWatchers()
    batch = engine.ChangeBatch((engine.Change(engine.ChangeKind.MODIFIED, "a.py"),))
    assert watchers.feed_nowait(batch) == 0  # nobody watches yet
    async with trio.open_nursery() as nursery:

        async def watch() -> None:
            async with watchers("/memory/w", ignore=[".scribe/"], quiet=0.01) as w:
                assert await w.__anext__() == batch

        nursery.start_soon(watch)
        watcher = await watchers.wait_watching("/memory/w")
        assert watcher.ignore == (".scribe/",) and watcher.options == {"quiet": 0.01}
        assert watchers.feed_nowait(batch, root="/elsewhere") == 0
        assert watchers.feed_nowait(batch, root="/memory/w") == 1
    assert watcher.closed and watcher.delivered == 1 and watchers.watchers == ()
    assert watchers.opened == 1
    with pytest.raises(trio.ClosedResourceError):
        watcher.feed_nowait(batch)
    with pytest.raises(engine.InvalidArgumentError):
        watcher.feed_nowait(engine.ChangeBatch())
    with pytest.raises(TypeError):
        engine.testing.FakeWatcher()  # type: ignore[call-arg]


async def test_session_store_owners_are_unique_while_live() -> None:
    db = engine.testing.InMemoryDatabase()
    async with engine.testing.open_in_memory_session_store(db, owner_id="a") as store:
        assert store.database is db
        with pytest.raises(engine.StoreError):
            async with engine.testing.open_in_memory_session_store(db, owner_id="a"):
                pass  # pragma: no cover
    async with engine.testing.open_in_memory_session_store(db, owner_id="a") as again:
        assert again.owner_id == "a"  # the first is gone: the id is free
    with pytest.raises(TypeError):
        engine.testing.InMemorySessionStore(db, "x")


async def test_file_system_roots_and_initial_files() -> None:
    fs = engine.testing.InMemoryFileSystem("/memory/x/../tree", files={"d/e.txt": b"bytes"})
    assert fs.root.as_posix() == "/memory/tree"
    assert await fs.read_bytes("d/e.txt") == b"bytes" and (await fs.stat("d")).is_dir
    with pytest.raises(engine.InvalidArgumentError):
        engine.testing.InMemoryFileSystem("relative")
    with pytest.raises(TypeError):
        await fs.read_bytes(b"d/e.txt")  # type: ignore[arg-type]


async def test_embedder_and_generation_store_counters() -> None:
    embedder = engine.testing.FakeEmbedder({"a": [1, 0]}, dimensions=2, model="m")
    assert isinstance(embedder, engine.Embedder)
    assert await embedder.embed(["a", "b"]) == [[1.0, 0.0], [0.0, 0.0]]
    assert embedder.calls == [("a", "b")] and (embedder.model, embedder.dimensions) == ("m", 2)
    with pytest.raises(engine.InvalidArgumentError):
        engine.testing.FakeEmbedder(dimensions=0)

    store = engine.testing.InMemoryGenerationStore()
    cache = engine.testing.in_memory_generation_cache(store, similarity_threshold=None)
    first = await cache.get_or_generate("p", "m", {}, _answer)
    await cache.get_or_generate("p", "m", {}, _answer)
    assert store.hits(first.key) == 1 and store.hits("nothing") == 0


async def _answer() -> str:
    await trio.lowlevel.checkpoint()
    return "answer"
