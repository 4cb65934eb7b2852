"""A scribe wired to the real adapters (git, inotify watcher, scoped file system, PostgreSQL) for tests."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
from git_repos import GIT_ENV

import adapters
import engine
from adapters.postgres._worklog_store import PostgresWorklogStore
from engine._context._provider import ContextProvider
from engine._context._spec import SourceSpec
from engine._scribe._scribe import Scribe, ScribeConfig, open_scribe
from engine._scribe._summary import HeuristicSummarizer, Summarizer
from engine._scribe._summary_pipeline import SummaryPipeline


@dataclass
class Stack:
    """Everything a scribe test touches."""

    engine: engine.Engine
    db: adapters.Database
    registry: adapters.SessionRegistry
    store: PostgresWorklogStore
    scribe: Scribe
    context: ContextProvider
    pipeline: SummaryPipeline


async def open_test_repo(path: Path, *, gate: engine.PriorityLimiter | None = None) -> engine.Git:
    """The git adapter with the test identity (so commits made through it work)."""
    return await adapters.open_repository(path, env=GIT_ENV, gate=gate)


@asynccontextmanager
async def open_stack(
    pg_url: str,
    *,
    config: ScribeConfig | None = None,
    summarizer: Summarizer | None = None,
    sources: Mapping[str, SourceSpec] | None = None,
    min_interval: float = 0.0,
    watcher_quiet: float = 0.01,
) -> AsyncIterator[Stack]:
    """An engine, the database, the registry, the worklog store, the summary pipeline, the context
    provider and a scribe, all closed in order at the end."""
    cfg = config or ScribeConfig(
        watcher_options={"quiet": watcher_quiet, "cap": 0.1, "reconcile_interval": None}
    )
    async with engine.open_engine(engine.EngineConfig(shutdown_grace=2.0)) as eng:
        async with adapters.open_database(pg_url, gate=eng.gate("db"), pool_size=4) as db:
            async with adapters.open_session_registry(db) as registry:
                store = PostgresWorklogStore(db)
                context = ContextProvider(eng, sources=sources)
                pipeline = SummaryPipeline(
                    eng,
                    store,
                    summarizer or HeuristicSummarizer(),
                    min_interval=min_interval,
                    on_summary=lambda s: context.note_summary(s.session_id, s.as_dict()),
                )
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(pipeline.run)
                    async with open_scribe(
                        eng,
                        registry=registry,
                        store=store,
                        open_repo=functools.partial(open_test_repo, gate=eng.gate("git")),
                        open_fs=lambda root: adapters.ScopedFileSystem(root, gate=eng.gate("fs")),
                        open_watcher=adapters.open_watcher,
                        config=cfg,
                        pipeline=pipeline,
                        context=context,
                    ) as scribe:
                        yield Stack(eng, db, registry, store, scribe, context, pipeline)
                    with trio.move_on_after(10):
                        await pipeline.wait_idle()
                    nursery.cancel_scope.cancel()


async def next_event(
    sub: engine.Subscription,
    predicate: Callable[[engine.Event], bool] = lambda e: True,
    *,
    timeout: float = 10.0,
) -> engine.Event:
    """The next event of ``sub`` that satisfies ``predicate`` (fails the test after ``timeout``)."""
    with trio.fail_after(timeout):
        async for event in sub:
            if predicate(event):
                return event
    raise AssertionError("subscription ended")


def worklog_kind(kind: str, session_id: str | None = None) -> Callable[[engine.Event], bool]:
    """A predicate: a ``session.worklog`` event of ``kind`` (for ``session_id``)."""

    def check(e: engine.Event) -> bool:
        return (
            e.topic == "session.worklog"
            and e.payload.get("kind") == kind
            and (session_id is None or e.session_id == session_id)
        )

    return check


def payload(e: engine.Event) -> dict[str, Any]:
    """The event's payload as a plain dict."""
    return dict(e.payload)


async def poll_until(
    check: Callable[[], bool], *, timeout: float = 10.0, every: float = 0.02
) -> None:
    """Wait until ``check()`` is true (for state outside the engine, such as a file's content)."""
    with trio.fail_after(timeout):
        while not check():  # noqa: ASYNC110 - the state is a file, nothing to wait on
            await trio.sleep(every)
