"""Debian's PostgreSQL server (the ``postgresql`` package) as a throwaway cluster for the tests.

The engine's claim is "any PostgreSQL": besides the embedded server (PostgreSQL 18 with pgvector), the
database tests run against the distribution's own server, an older major version without pgvector. The
cluster is made with Debian's ``initdb`` in a temporary directory and listens only on a unix socket there
(``-k``, ``listen_addresses=''``); no system service, port or ``/etc/postgresql`` cluster is involved.
PostgreSQL refuses to run as root, so as root every server command runs as the ``postgres`` user the
package creates, and the temporary directory belongs to that user (root still reaches the socket).

A test run that is killed leaves its cluster running; :func:`reap_stale_debian_servers` (called by the
fixture) stops the clusters and removes the directories of runs whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

#: Where Debian installs its server versions (``/usr/lib/postgresql/<major>/bin``).
DEBIAN_PG_ROOT: Final = Path("/usr/lib/postgresql")
#: The unprivileged user Debian's ``postgresql-common`` creates.
SYSTEM_USER: Final = "postgres"
SUPERUSER: Final = "postgres"
_PREFIX: Final = "scribe-debian-pg-test-"
_OWNER_FILE: Final = "owner.pid"
_TIMEOUT: Final = 60


class DebianServerError(RuntimeError):
    """Debian's server is not installed, or one of its commands failed (the message says which and why)."""


def debian_bin_dir() -> Path:
    """The ``bin`` directory of the newest PostgreSQL version Debian has installed.

    Raises:
        DebianServerError: no ``postgresql`` package is installed.
    """
    versions = [
        path.parent
        for path in DEBIAN_PG_ROOT.glob("*/bin")
        if path.parent.name.isdigit() and (path / "pg_ctl").exists()
    ]
    if not versions:
        raise DebianServerError(
            f"Debian's PostgreSQL server is not installed (no {DEBIAN_PG_ROOT}/<version>/bin/pg_ctl): "
            "run `apt-get install postgresql` (scripts/test.sh installs it)"
        )
    newest = max(versions, key=lambda path: int(path.name))
    return newest / "bin"


class DebianServer:
    """One throwaway cluster of Debian's server whose files all live in ``directory``.

    Every method blocks (``initdb`` / ``pg_ctl``).

    Args:
        directory: an empty directory of its own (the data directory, the log and the socket go there).
        settings: server settings (``name -> value``) passed as ``-c name=value`` at start.
    """

    def __init__(self, directory: Path, *, settings: Mapping[str, str] | None = None) -> None:
        self.directory = Path(directory).absolute()
        self.pgdata = self.directory / "pgdata"
        self.settings = dict(settings or {})
        self._bin = debian_bin_dir()
        self._as_root = os.geteuid() == 0

    @property
    def socket_dir(self) -> Path:
        return self.directory

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    @property
    def major_version(self) -> int:
        """The server's major version (Debian installs each under ``/usr/lib/postgresql/<major>``)."""
        return int(self._bin.parent.name)

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for ``database`` over the unix socket, as the superuser."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        return self._exec("pg_ctl", "status", "-D", str(self.pgdata)).returncode == 0

    def start(self) -> None:
        """``initdb`` on first use, then start the server and wait until it accepts connections."""
        if self._as_root:
            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        if not (self.pgdata / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-U",
                SUPERUSER,
            )
        options = ["-c listen_addresses=''", f"-k {self.socket_dir}"]
        options += [f"-c {name}={value}" for name, value in self.settings.items()]
        self._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            str(_TIMEOUT),
            "-D",
            str(self.pgdata),
            "-l",
            str(self.log_path),
            "-o",
            " ".join(options),
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``pg_ctl stop -m mode``) and wait until it is gone; a no-op when stopped."""
        if self.is_running():
            self._run(
                "pg_ctl", "stop", "-w", "-t", str(_TIMEOUT), "-m", mode, "-D", str(self.pgdata)
            )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _exec(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        user = group = None
        extra_groups: list[int] | None = None
        if self._as_root:
            entry = pwd.getpwnam(SYSTEM_USER)
            user, group, extra_groups = entry.pw_uid, entry.pw_gid, []
        return subprocess.run(
            [str(self._bin / program), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT + 10,
            check=False,
            cwd="/",
            user=user,
            group=group,
            extra_groups=extra_groups,
        )

    def _run(self, program: str, *args: str) -> None:
        result = self._exec(program, *args)
        if result.returncode != 0:
            output = (result.stderr.strip() or result.stdout.strip())[-2000:]
            raise DebianServerError(
                f"Debian's PostgreSQL {program} {args[0]} failed (exit {result.returncode}) in "
                f"{self.directory}: {output}\n{self.log_tail()}"
            )


@contextlib.contextmanager
def debian_server_directory() -> Iterator[Path]:
    """A fresh directory for a cluster, removed afterwards; it records the test process's pid so a later
    run can clean up after a killed one."""
    directory = Path(tempfile.mkdtemp(prefix=_PREFIX))
    (directory / _OWNER_FILE).write_text(str(os.getpid()))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale_debian_servers() -> None:
    """Stop the clusters and remove the directories of earlier test runs that were killed before their
    fixtures could clean up (their owner process is gone)."""
    for directory in Path(tempfile.gettempdir()).glob(_PREFIX + "*"):
        try:
            owner = int((directory / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        with contextlib.suppress(DebianServerError, OSError, subprocess.TimeoutExpired):
            DebianServer(directory).stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
