"""A ``scribe serve`` subprocess with a home of its own, as the command-line and MCP tests start it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from git_repos import GIT_ENV

SCRIBE = str(Path(sys.executable).with_name("scribe"))
START_TIMEOUT = 60.0


class Daemon:
    """A ``scribe serve`` subprocess with its own home."""

    def __init__(self, home: Path, db_url: str, cwd: Path) -> None:
        self.home = home
        self.cwd = cwd
        self.env = {
            **os.environ,
            **GIT_ENV,
            "SCRIBE_HOME": str(home),
            "SCRIBE_DATABASE_URL": db_url,
        }
        self.proc: subprocess.Popen[str] | None = None
        self.output = ""

    def start(self, *extra: str) -> str:
        """Start the daemon and return what it printed once ready."""
        self.proc = subprocess.Popen(
            [SCRIBE, "serve", "--dashboard-port", "0", "--feed-port", "0", *extra],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        lines = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Try:"):
                return "".join(lines)
        self.kill()
        raise AssertionError("daemon did not start:\n" + "".join(lines))

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``scribe ARGS`` as a user would."""
        return subprocess.run(
            [SCRIBE, *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            input=stdin,
            timeout=60,
        )

    def json(self, *args: str) -> Any:
        """Run ``scribe ARGS --json`` and return the parsed answer (it must succeed)."""
        r = self.run(*args, "--json")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def stop(self) -> str:
        """SIGTERM, and the rest of what the daemon printed."""
        assert self.proc is not None and self.proc.stdout is not None
        self.proc.send_signal(signal.SIGTERM)
        rest = self.proc.stdout.read()
        assert self.proc.wait(timeout=60) == 0, rest
        self.proc.stdout.close()
        self.proc = None
        return rest

    def kill(self) -> None:
        """SIGKILL: no cleanup at all."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None


def wait_for(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


class ControlDaemon:
    """A ``scribe serve`` subprocess with no session and no dashboard, a control client on its
    socket and the URL of its database (for reading its tables back).

    Args:
        home: its home.
        db_url: its database.
        cwd: where it runs.
        env: extra environment (``SCRIBE_LOG_LEVEL`` ...).
    """

    def __init__(
        self, home: Path, db_url: str, cwd: Path, *, env: dict[str, str] | None = None
    ) -> None:
        import adapters

        self.home, self.url = home, db_url
        self.process = Daemon(home, db_url, cwd)
        self.process.env.update(env or {})
        self.process.start("--no-session", "--no-dashboard")
        self.client = adapters.ControlClient(home / "scribe.sock", timeout=60)

    def call(self, op: str, **args: Any) -> Any:
        """One request; its result (a ``DaemonError`` when refused)."""
        return self.client.call(op, args)

    def refused(self, op: str, **args: Any) -> Any:
        """One request the daemon must refuse; the ``DaemonError`` it answered."""
        import adapters

        try:
            self.client.call(op, args)
        except adapters.DaemonError as exc:
            return exc
        raise AssertionError(f"{op} was not refused")

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """The rows of a query on the daemon's database."""
        import psycopg

        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        """SIGTERM, then wait for it (SIGKILL if it does not stop)."""
        try:
            self.process.stop()
        finally:
            self.process.kill()
