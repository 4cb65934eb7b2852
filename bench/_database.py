"""The benchmarks' database: ``SCRIBE_DATABASE_URL`` when set, else an embedded PostgreSQL in a
temporary directory, made for the run and removed after it (a ``bench`` database in it)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import adapters


@contextlib.contextmanager
def bench_database(url: str | None = None) -> Iterator[str]:
    """A URL of the database to measure on: ``url``, else ``SCRIBE_DATABASE_URL``, else a new
    embedded server's (stopped and removed at the end)."""
    url = url or os.environ.get("SCRIBE_DATABASE_URL")
    if url:
        yield url
        return
    directory = Path(tempfile.mkdtemp(prefix="scribe-bench-pg-"))
    server = adapters.EmbeddedServer(directory / "pgdata", settings={"max_connections": "100"})
    try:
        server.start()
        server.create_database("bench")
        yield server.url("bench")
    finally:
        server.stop("fast")
        shutil.rmtree(directory, ignore_errors=True)
