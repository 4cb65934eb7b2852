"""Engine logic on the in-memory ports: the scribe captures edits, a commit, a note and a stop, and
the summary pipeline summarises them, with no database, no git process and no inotify."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio

import engine
import engine.testing
from engine._ports._worklog_records import EntryKind

C, K = engine.Change, engine.ChangeKind


async def _next(
    sub: engine.Subscription, kind: str, session_id: str, *, timeout: float = 10.0
) -> engine.Event:
    wanted: Callable[[engine.Event], bool] = lambda e: (  # noqa: E731
        e.topic == "session.worklog"
        and e.session_id == session_id
        and e.payload.get("kind") == kind
    )
    with trio.fail_after(timeout):
        async for event in sub:
            if wanted(event):
                return event
    raise AssertionError("subscription ended")


async def test_the_scribe_runs_on_in_memory_ports() -> None:
    repo = engine.testing.FakeGit("/memory/work")
    repo.write_file("src/app.py", "print('hi')\n")
    repo.write_file("README.md", "# demo\n")
    await repo.add(all=True)
    base = await repo.commit("initial")
    repo.checkout("feat/B-77-login", create=True)

    db = engine.testing.InMemoryDatabase()
    store = engine.testing.InMemoryWorklogStore(db)
    watchers = engine.testing.FakeWatchers()

    config = engine.ScribeConfig(mirror=".scribe/{backlog}.md", mirror_delay=0.0)
    async with (
        engine.open_engine(engine.EngineConfig(shutdown_grace=2.0)) as eng,
        engine.testing.open_in_memory_session_store(db) as registry,
        trio.open_nursery() as nursery,
    ):
        pipeline = engine.SummaryPipeline(eng, store, engine.HeuristicSummarizer(), min_interval=0)
        nursery.start_soon(pipeline.run)
        async with engine.open_scribe(
            eng,
            registry=registry,
            store=store,
            open_repo=repo.open_at,
            open_fs=lambda root: repo.worktree,
            open_watcher=watchers,
            config=config,
            pipeline=pipeline,
        ) as scribe:
            with pytest.raises(engine.NotARepositoryError):
                await scribe.start("/elsewhere")
            rec = await scribe.start(repo.root / "src", tags=("api",))
            assert rec.backlog_id == "B-77" and rec.state is engine.SessionState.ACTIVE
            watcher = await watchers.wait_watching(repo.root)
            async with eng.open_subscription(["session.worklog"]) as sub:
                repo.write_file("src/app.py", "print('changed')\n")
                repo.write_file("src/new.py", "x = 1\n")
                watcher.feed_nowait(
                    engine.ChangeBatch((C(K.MODIFIED, "src/app.py"), C(K.CREATED, "src/new.py")))
                )
                files = await _next(sub, "files", rec.id)
                assert files.payload["payload"]["created"] == ["src/new.py"]
                assert files.payload["payload"]["modified"] == ["src/app.py"]

                await repo.add(all=True)
                oid = await repo.commit("Add new module\n\nand change the app")
                ref = ".git/refs/heads/feat/B-77-login"
                watcher.feed_nowait(engine.ChangeBatch((C(K.MODIFIED, ref),)))
                commit = await _next(sub, "commit", rec.id)
                assert commit.payload["payload"]["hash"] == oid
                assert commit.payload["payload"]["subject"] == "Add new module"
                assert sorted(commit.payload["payload"]["files"]) == ["src/app.py", "src/new.py"]
                assert commit.payload["payload"]["parents"] == [base]

                await scribe.append_note(rec.id, "Decision: keep the module small")
                stopped = await scribe.stop(rec.id)
            assert stopped.state is engine.SessionState.COMPLETED
            with trio.fail_after(10):
                await pipeline.wait_idle()
        nursery.cancel_scope.cancel()

    entries = await store.entries(rec.id)
    assert [e.kind for e in entries] == [
        EntryKind.SESSION_START,
        EntryKind.FILES,
        EntryKind.COMMIT,
        EntryKind.NOTE,
        EntryKind.SESSION_STOP,
    ]
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].payload["branch"] == "feat/B-77-login"
    assert (await registry.get(rec.id)).state is engine.SessionState.COMPLETED
    summary = await store.latest_summary(rec.id)
    assert summary is not None and summary.final
    assert "keep the module small" in " ".join(summary.decisions)
    assert "src/new.py" in summary.files_modified
    mirror = (await repo.worktree.read_text(".scribe/B-77.md")).splitlines()
    assert any("Add new module" in line for line in mirror)
    assert watchers.watchers == () and watcher.closed
