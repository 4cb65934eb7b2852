"""The backends every contract runs against: the in-memory implementation and the real adapter.

A contract test takes a harness fixture (``sessions``, ...) parametrized over ``memory`` and
``postgres`` (or ``git``, ``disk``, ``inotify``): one test body, one spec, every implementation.
A harness opens the port's implementation and does what a test needs beyond the protocol (set a
repository's state, age the rows), each in its backend's own way.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

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
