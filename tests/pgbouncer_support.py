"""A throwaway PgBouncer (Debian's ``pgbouncer``) in front of a test server, on a unix socket in a
directory of its own, run as the server's system user (PgBouncer refuses to run as root)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

PGBOUNCER = "/usr/sbin/pgbouncer"
PORT = 6432


class PgBouncer:
    """PgBouncer in ``pool_mode`` (``session`` or ``transaction``) in front of the server whose unix
    socket is in ``server_socket_dir``; :meth:`url` names a database through it."""

    def __init__(self, directory: Path, server_socket_dir: Path, pool_mode: str) -> None:
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "users.txt").write_text('"postgres" ""\n')
        (directory / "pgbouncer.ini").write_text(
            f"[databases]\n* = host={server_socket_dir}\n\n[pgbouncer]\nlisten_addr =\n"
            f"unix_socket_dir = {directory}\nlisten_port = {PORT}\nauth_type = trust\n"
            f"auth_file = {directory}/users.txt\npool_mode = {pool_mode}\n"
            "max_client_conn = 200\ndefault_pool_size = 40\n"
            f"logfile = {directory}/pgbouncer.log\n"
        )
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            for path in (directory, *directory.iterdir()):
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.directory}&port={PORT}"

    def start(self) -> None:
        """Start it and wait (10 s at most) until its socket is there."""
        user = "postgres" if os.geteuid() == 0 else None
        self.proc = subprocess.Popen(
            [PGBOUNCER, str(self.directory / "pgbouncer.ini")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=user,
            cwd="/",
        )
        deadline = time.monotonic() + 10
        while not (self.directory / f".s.PGSQL.{PORT}").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "pgbouncer.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"pgbouncer did not start: {log}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
