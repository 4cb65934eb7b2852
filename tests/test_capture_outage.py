"""Capture across a real database outage: the embedded server stopped with ``pg_ctl stop -m immediate``
while files are created in a real work tree, then started again. Every change reaches the worklog once,
with contiguous seqs; also when the daemon is SIGKILLed during the outage (its journal is replayed).

Each test runs its own server (a fresh one: stopping the shared one would break the other tests).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from git_repos import GIT_ENV, git, make_repo
from pg_support import start_test_server
from scribe_support import next_event, open_stack, poll_until, worklog_kind

import adapters
import engine
from engine.app import AppConfig
from engine.app import open_stack as open_app_stack

SCRIBE = str(Path(sys.executable).with_name("scribe"))
FILES = 16


def created_paths(entries: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for e in entries:
        if e["kind"] == "files":
            out.extend(e["payload"]["created"])
    return out


@pytest.fixture
def server(pg_tmp_path: Path) -> Iterator[adapters.EmbeddedServer]:
    srv = start_test_server(pg_tmp_path)
    try:
        srv.create_database("scribe")
        yield srv
    finally:
        srv.stop("fast")


async def test_changes_made_while_the_database_is_down_all_reach_the_worklog(
    server: adapters.EmbeddedServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "work", files={"a.py": "a\n"})
    async with open_stack(server.url("scribe")) as s:
        async with s.engine.open_subscription(["session.worklog"]) as sub:
            rec = await s.scribe.start(repo)
            (repo / "before.py").write_text("0\n")
            await next_event(sub, worklog_kind("files", rec.id))
        await trio.to_thread.run_sync(server.stop, "immediate")
        for i in range(FILES):
            (repo / f"down{i}.py").write_text(f"{i}\n")
            await trio.sleep(0.05)  # separate change batches, each a write attempt

        want = [f"down{i}.py" for i in range(FILES)]
        journal = s.config.home / "journal" / f"{rec.id}.jsonl"
        # every change seen is written ahead to the journal: it survives a crash from here on
        await poll_until(lambda: sorted(journal_paths(journal)) == sorted(want), timeout=60)
        info = s.scribe.capture_info(rec.id)
        assert info is not None and info.journaled == info.carried > 0
        await trio.to_thread.run_sync(server.start)

        def drained() -> bool:
            info = s.scribe.capture_info(rec.id)
            return info is not None and info.carried == 0

        await poll_until(drained, timeout=60)
        entries = [e.as_dict() for e in await s.store.entries(rec.id)]
        await s.scribe.stop(rec.id)
    seqs = [e["seq"] for e in entries]
    assert seqs == list(range(1, len(entries) + 1))
    created = created_paths(entries)
    assert sorted(created) == sorted(["before.py", *want])  # every change, none twice
    assert not journal.exists()


class Daemon:
    """A ``scribe serve`` subprocess (its own home) on the test's database."""

    def __init__(self, home: Path, db_url: str, cwd: Path) -> None:
        self.home, self.cwd = home, cwd
        self.env = {
            **os.environ,
            **GIT_ENV,
            "SCRIBE_HOME": str(home),
            "SCRIBE_DATABASE_URL": db_url,
        }
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [SCRIBE, "serve", "--dashboard-port", "0", "--feed-port", "0"],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        lines = []
        for line in self.proc.stdout:
            lines.append(line)
            if line.startswith("Try:"):
                return
        raise AssertionError("daemon did not start:\n" + "".join(lines))

    def json(self, *args: str) -> Any:
        r = subprocess.run(
            [SCRIBE, *args, "--json"],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            self.proc = None


def wait_for(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout  # a guard against hanging, not a latency bound
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def journal_paths(path: Path) -> list[str]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    out: list[str] = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row["kind"] == "files":
            out.extend(row["payload"]["created"])
    return out


def test_a_daemon_killed_during_an_outage_loses_nothing(
    server: adapters.EmbeddedServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "work", files={"a.py": "a\n"})
    git(repo, "checkout", "-q", "-b", "feat/B-7-outage")
    daemon = Daemon(tmp_path / "home", server.url("scribe"), repo)
    try:
        daemon.start()
        [session] = daemon.json("list")
        sid = session["id"]
        (repo / "before.py").write_text("0\n")
        wait_for(lambda: "before.py" in created_paths(daemon.json("worklog", sid)["entries"]))
        server.stop("immediate")
        want = [f"down{i}.py" for i in range(FILES)]
        for name in want:
            (repo / name).write_text("x\n")
            time.sleep(0.05)
        journal = daemon.home / "journal" / f"{sid}.jsonl"
        wait_for(lambda: sorted(journal_paths(journal)) == sorted(want))
        daemon.kill()  # SIGKILL during the outage: only the journal holds these changes
        server.start()
        daemon.start()
        entries = daemon.json("worklog", sid)["entries"]
        assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
        assert sorted(created_paths(entries)) == sorted(["before.py", *want])
        assert not journal.exists()
    finally:
        daemon.kill()


async def test_the_daemons_embedded_server_is_restarted_when_it_dies(
    pg_tmp_path: Path, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "work", files={"a.py": "a\n"})
    cfg = engine.ScribeConfig(
        watcher_options={"quiet": 0.01, "cap": 0.1, "reconcile_interval": None}
    )
    app = AppConfig(home=pg_tmp_path, database_url=None, feed=False, dashboard=False)
    async with open_app_stack(app, scribe_config=cfg, git_env=GIT_ENV) as s:
        assert s.db.embedded is not None
        async with s.engine.open_subscription(["session.worklog", "database.restarted"]) as sub:
            rec = await s.scribe.start(repo)
            (repo / "before.py").write_text("0\n")
            await next_event(sub, worklog_kind("files", rec.id))
            # The postmaster dies (as a crash would have it); nobody but the daemon starts it again.
            server = adapters.EmbeddedServer(pg_tmp_path / "pgdata")
            await trio.to_thread.run_sync(server.stop, "immediate")
            for i in range(FILES):
                (repo / f"down{i}.py").write_text(f"{i}\n")
                await trio.sleep(0.05)
            restarted = await next_event(sub, lambda e: e.topic == "database.restarted", timeout=60)
            assert restarted.payload["restarts"] == 1

        want = ["before.py", *(f"down{i}.py" for i in range(FILES))]
        entries: list[dict[str, Any]] = []
        with trio.fail_after(60):  # a guard against hanging: a lost change never arrives
            while set(created_paths(entries)) != set(want):
                await trio.sleep(0.1)
                entries = [e.as_dict() for e in await s.store.entries(rec.id)]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert sorted(created_paths(entries)) == sorted(want)  # none twice
