"""In-memory implementations of the engine's ports, for tests and for hosts that test their own code.

Each one implements its protocol exactly and raises the engine's typed errors, and each is held to
the same contract tests (``tests/contracts/``) as the real adapter, so engine logic runs without
PostgreSQL, git or inotify. Everything here is pure trio and touches no disk.

========================================  ====================================================
port                                      in memory
========================================  ====================================================
:class:`engine.SessionStore`              :func:`open_in_memory_session_store`
:class:`engine.WorklogStore`              :class:`InMemoryWorklogStore`
:class:`engine.EntryJournal`              :class:`InMemoryEntryJournal`
(both share rows)                         :class:`InMemoryDatabase`
:class:`engine.MemoryStore`               :class:`InMemoryMemoryStore`
:class:`engine.GenerationCacheStore`      :class:`InMemoryGenerationStore`
                                          (:func:`in_memory_generation_cache` for the cache)
:class:`engine.Git`                       :class:`FakeGit`
:class:`engine.FileSystem`                :class:`InMemoryFileSystem`
:class:`engine.WatcherFactory` / Watcher  :class:`FakeWatchers` / :class:`FakeWatcher`
:class:`engine.Embedder`                  :class:`FakeEmbedder` (vectors a test chooses)
:class:`engine.MetricStore`               :class:`InMemoryMetricStore`
========================================  ====================================================

The summarizer (:class:`engine.HeuristicSummarizer`) and the memory sources
(:class:`engine.MessagesSource`, :class:`engine.DecisionsSource`, :class:`engine.FactsSource`,
:class:`engine.CallableSource`) are pure already and work on these stores as they are.

A scribe on them::

    repo = engine.testing.FakeGit("/memory/work")
    db = engine.testing.InMemoryDatabase()
    watchers = engine.testing.FakeWatchers()
    async with engine.open_engine() as eng, engine.testing.open_in_memory_session_store(db) as reg:
        async with engine.open_scribe(
            eng,
            registry=reg,
            store=engine.testing.InMemoryWorklogStore(db),
            open_repo=repo.open_at,
            open_fs=lambda root: repo.worktree,
            open_watcher=watchers,
        ) as scribe:
            record = await scribe.start(repo.root)
            repo.write_file("app.py", "print('hi')\\n")
            watchers.feed_nowait(engine.ChangeBatch((engine.Change("created", "app.py"),)))

(``tests/contracts/test_engine_without_postgres.py`` runs this end to end.)

:class:`Schedule` and :func:`schedules` fuzz the interleavings of session code: hypothesis draws the
order in which trio runs ready tasks, and a failure prints the seed that replays it (see
``engine.testing._fuzz`` for an example; ``property_tests/`` use it on the engine itself).
"""

from ._database import InMemoryDatabase as InMemoryDatabase
from ._session_store import InMemorySessionStore as InMemorySessionStore
from ._session_store import open_in_memory_session_store as open_in_memory_session_store
from ._worklog_store import InMemoryWorklogStore as InMemoryWorklogStore
from ._entry_journal import InMemoryEntryJournal as InMemoryEntryJournal
from ._fs import InMemoryFileSystem as InMemoryFileSystem
from ._git import FakeGit as FakeGit
from ._watcher import FakeWatcher as FakeWatcher
from ._watcher import FakeWatchers as FakeWatchers
from ._generation_store import InMemoryGenerationStore as InMemoryGenerationStore
from ._generation_store import in_memory_generation_cache as in_memory_generation_cache
from ._memory_store import InMemoryMemoryStore as InMemoryMemoryStore
from ._embedder import FakeEmbedder as FakeEmbedder
from ._metric_store import InMemoryMetricStore as InMemoryMetricStore
from ._fuzz import Schedule as Schedule
from ._fuzz import schedules as schedules
