"""The backends every contract runs against: the in-memory implementation and the real adapter.

A contract test takes a harness fixture (``sessions``, ...) parametrized over ``memory`` and
``postgres`` (or ``git``, ``disk``, ``inotify``): one test body, one spec, every implementation.
A harness opens the port's implementation and does what a test needs beyond the protocol (set a
repository's state, age the rows), each in its backend's own way.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import psycopg.sql
from git_repos import GIT_ENV, git, make_repo

import adapters
import engine
import engine.testing


class SessionsBackend(Protocol):
    """Opens a session store and the worklog store of the same database."""

    name: str

    def open_stores(
        self, owner_id: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[tuple[engine.SessionStore, engine.WorklogStore]]:
        """An engine process's stores: the session store is a live owner for the block."""
        ...


class MemorySessions:
    """The in-memory stores over one :class:`engine.testing.InMemoryDatabase`."""

    name = "memory"

    def __init__(self) -> None:
        self.db = engine.testing.InMemoryDatabase()

    @contextlib.asynccontextmanager
    async def open_stores(
        self, owner_id: str | None = None
    ) -> AsyncIterator[tuple[engine.SessionStore, engine.WorklogStore]]:
        async with engine.testing.open_in_memory_session_store(self.db, owner_id=owner_id) as reg:
            yield reg, engine.testing.InMemoryWorklogStore(self.db)


class PostgresSessions:
    """The registry and worklog store over a fresh PostgreSQL database."""

    name = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url

    @contextlib.asynccontextmanager
    async def open_stores(
        self, owner_id: str | None = None
    ) -> AsyncIterator[tuple[engine.SessionStore, engine.WorklogStore]]:
        async with (
            adapters.open_database(self.url, pool_size=4) as db,
            adapters.open_session_registry(db, owner_id=owner_id) as reg,
        ):
            yield reg, adapters.PostgresWorklogStore(db)


# ------------------------------------------------------------------------------ file system


class FilesBackend(Protocol):
    """Opens a file system over a root that holds ``a.txt`` ("alpha") and ``sub/b.txt`` ("beta")."""

    name: str

    def open_fs(self, *, max_read_size: int = 16 * 1024 * 1024) -> engine.FileSystem:
        """A new file system over the prepared root."""
        ...


class MemoryFiles:
    name = "memory"

    def open_fs(self, *, max_read_size: int = 16 * 1024 * 1024) -> engine.FileSystem:
        return engine.testing.InMemoryFileSystem(
            "/memory/tree",
            files={"a.txt": "alpha", "sub/b.txt": "beta"},
            max_read_size=max_read_size,
        )


class DiskFiles:
    name = "disk"

    def __init__(self, root: Path) -> None:
        (root / "sub").mkdir()
        (root / "a.txt").write_text("alpha")
        (root / "sub" / "b.txt").write_text("beta")
        self.root = root.resolve()

    def open_fs(self, *, max_read_size: int = 16 * 1024 * 1024) -> engine.FileSystem:
        return adapters.ScopedFileSystem(self.root, max_read_size=max_read_size)


# ------------------------------------------------------------------------------------- git


class GitBackend(Protocol):
    """A repository on branch ``main`` and the test's way to change its files and refs."""

    name: str

    async def open_git(self) -> engine.Git:
        """The repository through the port."""
        ...

    def write(self, path: str, content: str | bytes) -> None:
        """Write a work-tree file."""
        ...

    def delete(self, path: str) -> None:
        """Delete a work-tree file."""
        ...

    def switch(self, branch: str, *, create: bool = False) -> None:
        """Check out a branch (``git switch [-c]``)."""
        ...


class MemoryGit:
    name = "memory"

    def __init__(self) -> None:
        self.repo = engine.testing.FakeGit("/memory/repo")

    async def open_git(self) -> engine.Git:
        return self.repo

    def write(self, path: str, content: str | bytes) -> None:
        self.repo.write_file(path, content)

    def delete(self, path: str) -> None:
        self.repo.delete_file(path)

    def switch(self, branch: str, *, create: bool = False) -> None:
        self.repo.checkout(branch, create=create)


class RealGit:
    name = "git"

    def __init__(self, root: Path) -> None:
        self.root = make_repo(root)

    async def open_git(self) -> engine.Git:
        return await adapters.open_repository(self.root, env=GIT_ENV)

    def write(self, path: str, content: str | bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        target.write_bytes(content)

    def delete(self, path: str) -> None:
        (self.root / path).unlink()

    def switch(self, branch: str, *, create: bool = False) -> None:
        git(self.root, "switch", "-q", *(["-c"] if create else []), branch)


# --------------------------------------------------------------------------------- watcher


class WatchBackend(Protocol):
    """Opens a watcher on a root and makes changes under it that the watcher must report."""

    name: str
    root: Path

    def open_watcher(self) -> contextlib.AbstractAsyncContextManager[engine.Watcher]:
        """A watcher of the root."""
        ...

    def create(self, path: str) -> None:
        """Create a file under the root (for the fake: feed the change it makes)."""
        ...


class FedWatch:
    name = "memory"

    def __init__(self) -> None:
        self.root = Path("/memory/watched")
        self.watchers = engine.testing.FakeWatchers()

    def open_watcher(self) -> contextlib.AbstractAsyncContextManager[engine.Watcher]:
        return self.watchers(self.root, quiet=0.01, cap=0.1, reconcile_interval=None)

    def create(self, path: str) -> None:
        change = engine.Change(engine.ChangeKind.CREATED, path)
        assert self.watchers.feed_nowait(engine.ChangeBatch((change,)), root=self.root) == 1


class InotifyWatch:
    name = "inotify"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def open_watcher(self) -> contextlib.AbstractAsyncContextManager[engine.Watcher]:
        return adapters.open_watcher(self.root, quiet=0.01, cap=0.1, reconcile_interval=None)

    def create(self, path: str) -> None:
        (self.root / path).write_text("x")


# ------------------------------------------------------------------------- generation store


class GenerationsBackend(Protocol):
    """Opens a generation store and ages what it holds."""

    name: str

    def open_store(self) -> contextlib.AbstractAsyncContextManager[engine.GenerationCacheStore]:
        """The store for the block."""
        ...

    async def age(self, seconds: float) -> None:
        """Make every stored entry ``seconds`` older (created and expiring that much earlier)."""
        ...


class ShiftedClock:
    """Wall-clock time plus an offset a test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class MemoryGenerations:
    name = "memory"

    def __init__(self) -> None:
        self.clock = ShiftedClock()
        self.store = engine.testing.InMemoryGenerationStore(clock=self.clock)

    @contextlib.asynccontextmanager
    async def open_store(self) -> AsyncIterator[engine.GenerationCacheStore]:
        yield self.store

    async def age(self, seconds: float) -> None:
        self.clock.offset += seconds


class PostgresGenerations:
    name = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        self.db: adapters.Database | None = None

    @contextlib.asynccontextmanager
    async def open_store(self) -> AsyncIterator[engine.GenerationCacheStore]:
        async with adapters.open_database(self.url, pool_size=2) as db:
            self.db = db
            yield adapters.PostgresGenerationStore(db)

    async def age(self, seconds: float) -> None:
        assert self.db is not None
        await self.db.execute(
            "UPDATE memory_generation_cache SET created_at = created_at - %(s)s * interval '1 s',"
            " expires_at = expires_at - %(s)s * interval '1 s'",
            {"s": seconds},
        )


# ----------------------------------------------------------------------------- memory store


class MemoriesBackend(Protocol):
    """Opens a conversation-memory store and ages what it holds."""

    name: str

    def open_store(
        self, *, embedder: engine.Embedder | None = None
    ) -> contextlib.AbstractAsyncContextManager[engine.MemoryStore]:
        """The store for the block."""
        ...

    async def age(self, seconds: float) -> None:
        """Move every expiry, and when messages and decisions were written or changed,
        ``seconds`` earlier (as if that much time had passed)."""
        ...


class MemoryMemories:
    name = "memory"

    def __init__(self) -> None:
        self.clock = ShiftedClock()

    @contextlib.asynccontextmanager
    async def open_store(
        self, *, embedder: engine.Embedder | None = None
    ) -> AsyncIterator[engine.MemoryStore]:
        yield engine.testing.InMemoryMemoryStore(embedder=embedder, clock=self.clock)

    async def age(self, seconds: float) -> None:
        self.clock.offset += seconds


_MEMORY_TABLES = (
    "memory_messages",
    "memory_context_facts",
    "memory_decisions",
    "memory_preferences",
    "memory_retrieval_cache",
)


class PostgresMemories:
    name = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        self.db: adapters.Database | None = None

    @contextlib.asynccontextmanager
    async def open_store(
        self, *, embedder: engine.Embedder | None = None
    ) -> AsyncIterator[engine.MemoryStore]:
        async with adapters.open_database(self.url, pool_size=4) as db:
            self.db = db
            yield await adapters.create_memory_store(db, embedder=embedder)

    async def age(self, seconds: float) -> None:
        assert self.db is not None
        for table in _MEMORY_TABLES:
            await self.db.execute(
                psycopg.sql.SQL(
                    "UPDATE {} SET expires_at = expires_at - %s * interval '1 second'"
                    " WHERE expires_at <> 'infinity'"
                ).format(psycopg.sql.Identifier(table)),
                (seconds,),
            )
        # written (and superseded) that much earlier too, for the retention sweeps
        await self.db.execute(
            "UPDATE memory_messages SET created_at = created_at - %s * interval '1 second'",
            (seconds,),
        )
        await self.db.execute(
            "UPDATE memory_decisions SET created_at = created_at - %(s)s * interval '1 second',"
            " updated_at = updated_at - %(s)s * interval '1 second'",
            {"s": seconds},
        )


# ----------------------------------------------------------------------------- metric store


class MetricsBackend(Protocol):
    """Opens a metric history store (an empty one)."""

    name: str

    def open_store(self) -> contextlib.AbstractAsyncContextManager[engine.MetricStore]: ...


class MemoryMetrics:
    name = "memory"

    @contextlib.asynccontextmanager
    async def open_store(self) -> AsyncIterator[engine.MetricStore]:
        yield engine.testing.InMemoryMetricStore()


class PostgresMetrics:
    name = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url

    @contextlib.asynccontextmanager
    async def open_store(self) -> AsyncIterator[engine.MetricStore]:
        async with adapters.open_database(self.url, pool_size=1) as db:
            yield adapters.PostgresMetricStore(db)
