"""Opening a :class:`Database`: checking the arguments, starting the embedded server when no URL is
given, connecting the pool and applying pending migrations, all for the duration of one block."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import engine

from ._database import Database
from ._embedded import EmbeddedServer
from ._migrations import MIGRATIONS_DIR, apply_migrations, discover_migrations
from ._shared_server import open_embedded_server

__all__ = ["open_database"]


@contextlib.asynccontextmanager
async def open_database(
    url: str | None = None,
    *,
    home: Path | None = None,
    pool_size: int = 4,
    gate: engine.PriorityLimiter | None = None,
    migrate: bool = True,
    statement_timeout: float | None = 300.0,
    acquire_timeout: float = 5.0,
    connect_timeout: float = 5.0,
    application_name: str = "scribe",
    migrations_dir: Path = MIGRATIONS_DIR,
) -> AsyncIterator[Database]:
    """Connect to PostgreSQL for the duration of the block.

    Args:
        url: a libpq URL. None: the embedded server under ``home`` (started for the block, stopped
            after it unless another process still uses it). The application resolves both from its
            configuration (:func:`engine.app.load_config`: flags, ``$SCRIBE_DATABASE_URL``, the
            TOML file).
        home: the engine home for the embedded server (needed when ``url`` is None).
        pool_size: pooled connections, which is also the number of worker-thread slots.
        gate: the priority gate queries are admitted through (default: a private one of ``pool_size``).
        migrate: apply pending migrations before the block starts.
        statement_timeout: seconds after which the server cancels any statement (None: no limit).
        acquire_timeout: the longest a call waits for a connection before failing with
            :class:`DatabaseUnavailableError` (while the server is known to be down: a quarter second).
        connect_timeout: the longest one connection attempt may take.
        application_name: shown in ``pg_stat_activity``.
        migrations_dir: where the migration files are.

    Raises:
        DatabaseUnavailableError: the server cannot be reached.
        EmbeddedServerError: the embedded server cannot start (the message says why).
        MigrationError, SchemaTooNewError: the schema cannot be brought up to date.

    Cancellation: opening waits for its worker threads (connecting, migrating in one transaction that
    a cancellation rolls back); closing is shielded and bounded by the pool's close timeout.
    """
    if pool_size < 1:
        raise engine.InvalidArgumentError(f"pool_size must be >= 1, not {pool_size!r}")
    if acquire_timeout <= 0 or connect_timeout <= 0:
        raise engine.InvalidArgumentError("acquire_timeout and connect_timeout must be positive")
    if statement_timeout is not None and statement_timeout <= 0:
        raise engine.InvalidArgumentError("statement_timeout must be positive or None")
    if url is None and home is None:
        raise engine.InvalidArgumentError("no database URL and no home for the embedded server")
    migrations = discover_migrations(migrations_dir) if migrate else ()
    async with contextlib.AsyncExitStack() as stack:
        server: EmbeddedServer | None = None
        if url is None:
            if home is None:  # refused above, before any work
                raise engine.InvalidArgumentError("no home for the embedded server")
            server = await stack.enter_async_context(open_embedded_server(home))
            url = server.url("scribe")
        db = Database._create(
            url,
            pool_size=pool_size,
            gate=gate if gate is not None else engine.PriorityLimiter(pool_size, name="db"),
            statement_timeout=statement_timeout,
            acquire_timeout=acquire_timeout,
            connect_timeout=connect_timeout,
            application_name=application_name,
        )
        db.embedded = server
        await db._open()
        stack.push_async_callback(db._aclose)
        if migrations:
            await db.run_sync(lambda conn: apply_migrations(conn, migrations))
        yield db
