"""One embedded server shared by the engine processes of one data directory: :func:`open_embedded_server`.

Each process using the server leaves a holder file next to the data directory (``<pid>-<token>``) under
an exclusive lock; the first one starts the server, the last one to leave stops it, and holders of dead
processes are swept.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import uuid
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import trio

from ._embedded import EmbeddedServer
from ._errors import EmbeddedServerError

__all__ = ["open_embedded_server"]

_log = logging.getLogger(__name__)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Holders:
    """Who uses the server: one file per holder (``<pid>-<token>``) next to the data directory."""

    def __init__(self, pgdata: Path) -> None:
        self.dir = pgdata.with_name(pgdata.name + ".holders")
        self.lock = pgdata.with_name(pgdata.name + ".lock")

    def live(self) -> list[Path]:
        if not self.dir.exists():
            return []
        alive = []
        for entry in self.dir.iterdir():
            pid_text = entry.name.split("-", 1)[0]
            if pid_text.isdigit() and _pid_alive(int(pid_text)):
                alive.append(entry)
            else:
                entry.unlink(missing_ok=True)
        return alive

    def add(self) -> Path:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.dir / f"{os.getpid()}-{uuid.uuid4().hex}"
        path.touch()
        return path


#: The servers whose :func:`open_embedded_server` block has ended in this process: the supervisor
#: (:func:`~adapters.supervise_embedded_server`) starts none of them again.
_released: weakref.WeakSet[EmbeddedServer] = weakref.WeakSet()


def released(server: EmbeddedServer) -> bool:
    """Whether this process has let ``server`` go (its block ended; call under the holders' lock
    to be sure of it while acting on the answer)."""
    return server in _released


def _acquire(server: EmbeddedServer, database: str) -> Path:
    holders = _Holders(server.pgdata)
    with _locked(holders.lock):
        others = holders.live()
        server.start()
        try:
            server.create_database(database)
        except BaseException:
            if not others:
                try:
                    server.stop("fast")
                except EmbeddedServerError as exc:
                    _log.warning(
                        "the embedded server could not be stopped after a failed start: %s", exc
                    )
            raise
        return holders.add()


def _release(server: EmbeddedServer, holder: Path) -> None:
    holders = _Holders(server.pgdata)
    with _locked(holders.lock):
        _released.add(server)
        holder.unlink(missing_ok=True)
        if not holders.live():
            server.stop("fast")


def _data_dir(home: Path) -> Path:
    return home.expanduser().absolute() / "pgdata"


@contextlib.asynccontextmanager
async def open_embedded_server(
    home: Path,
    *,
    database: str = "scribe",
    settings: Mapping[str, str] | None = None,
) -> AsyncIterator[EmbeddedServer]:
    """Run the embedded server for ``<home>/pgdata`` for the duration of the block.

    Initialises the data directory on first use, starts the server unless another process already runs
    it, and creates ``database``. On exit the server is stopped unless another process still uses it.

    Args:
        home: the engine home (the application resolves it: :func:`engine.app.load_config`).
        database: the database to create if missing; connect with ``server.url(database)``.
        settings: extra server settings for a server this call starts.

    Raises:
        EmbeddedServerError: the server cannot be initialised or started; the message says why and
            carries the server's log tail.

    Cancellation: starting runs in a worker thread that is waited for, never abandoned (a start is
    bounded by ``pg_ctl``'s timeout), and the block then sees the cancellation at its first checkpoint.
    Stopping at exit is shielded and bounded by ``pg_ctl``'s timeout.
    """
    server = EmbeddedServer(_data_dir(home), settings=settings)
    holder = await trio.to_thread.run_sync(_acquire, server, database)
    try:
        yield server
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(_release, server, holder)
