"""Opening a scribe for the duration of a block: :func:`open_scribe`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from .._context._provider import ContextProvider
from .._core._engine import Engine
from .._ports._entry_journal import EntryJournal
from .._ports._session_store import SessionStore
from .._ports._worklog_store import WorklogStore
from ._capture import WatchOpener
from ._journal_replayer import JournalReplayer
from ._scribe import Scribe
from ._scribe_config import ScribeConfig
from ._scribe_records import FsOpener, RepoOpener
from ._summary_pipeline import SummaryPipeline

__all__ = ["open_scribe"]


@asynccontextmanager
async def open_scribe(
    engine: Engine,
    *,
    registry: SessionStore,
    store: WorklogStore,
    open_repo: RepoOpener,
    open_fs: FsOpener,
    open_watcher: WatchOpener,
    config: ScribeConfig | None = None,
    pipeline: SummaryPipeline | None = None,
    context: ContextProvider | None = None,
    journal: EntryJournal | None = None,
) -> AsyncIterator[Scribe]:
    """A scribe for the duration of the block.

    With a ``journal``, carried entries are written ahead to it and a previous run's are replayed.

    At the end of the block every live session is stopped (reason ``shutdown``): its stop entry is
    written and its state recorded as completed. If the block is cancelled, the same happens shielded
    and bounded, then the cancellation propagates.
    """
    scribe = Scribe._create(
        engine,
        registry=registry,
        store=store,
        open_repo=open_repo,
        open_fs=open_fs,
        open_watcher=open_watcher,
        config=config or ScribeConfig(),
        pipeline=pipeline,
        context=context,
        journal=journal,
    )
    async with trio.open_nursery() as nursery:
        scribe._nursery = nursery
        if journal is not None:
            scribe.replayer = JournalReplayer(journal, store, scribe.live, engine.publish_nowait)
            await scribe.replayer.start(nursery)
        try:
            yield scribe
        finally:
            with trio.CancelScope(shield=True) as scope:
                grace = scribe.config.stop_grace + 3 * engine.config.cleanup_timeout
                scope.deadline = trio.current_time() + grace
                await scribe.aclose()
            nursery.cancel_scope.cancel()
