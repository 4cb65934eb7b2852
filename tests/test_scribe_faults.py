"""The scribe when parts fail: a crashing watcher, a store that refuses writes, a session that fails.

Faults the real parts cannot be made to produce on demand come from thin wrappers implementing the
same protocols around the real adapters.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
from git_repos import git, make_repo
from scribe_support import next_event, open_stack, worklog_kind

import adapters
import engine
from engine._ports._worklog_records import EntryKind, WorklogEntry
from engine._scribe._scribe_config import ScribeConfig


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "work", files={"a.py": "a\n"})


class CrashingWatcher:
    """Opens the real watcher; the first ``crashes`` iterations raise instead."""

    def __init__(self, crashes: int) -> None:
        self.crashes = crashes
        self.opened = 0

    @contextlib.asynccontextmanager
    async def __call__(self, root: Any, **kw: Any) -> AsyncIterator[Any]:
        self.opened += 1
        async with adapters.open_watcher(root, **kw) as real:
            if self.crashes > 0:
                self.crashes -= 1

                class Broken:
                    def __aiter__(self) -> Broken:
                        return self

                    async def __anext__(self) -> Any:
                        await trio.lowlevel.checkpoint()
                        raise engine.WatcherError("inotify descriptor broke")

                yield Broken()
            else:
                yield real


class RefusingStore:
    """The real store, refusing the next ``refuse`` appends."""

    def __init__(self, real: adapters.PostgresWorklogStore) -> None:
        self.real = real
        self.refuse = 0

    async def append(self, entries: Sequence[WorklogEntry]) -> None:
        if self.refuse:
            self.refuse -= 1
            raise engine.WorklogError("database unavailable")
        await self.real.append(entries)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


FAST = dict(quiet=0.01, cap=0.1, reconcile_interval=None)


async def test_a_crashed_watcher_is_restarted_and_catches_up(pg_url: str, repo: Path) -> None:
    watcher = CrashingWatcher(crashes=2)
    policy = engine.RestartPolicy(max_restarts=5, period=60, backoff_initial=0.01)
    config = ScribeConfig(watcher_options=FAST, restart_policy=policy)
    async with open_stack(pg_url, config=config) as s:
        s.scribe._open_watcher = watcher
        async with s.engine.open_subscription(["session.service", "session.worklog"]) as sub:
            rec = await s.scribe.start(repo)
            for _ in range(2):
                ev = await next_event(sub, lambda e: e.topic == "session.service")
                assert "inotify descriptor broke" in ev.payload["error"]
            # a commit made around the restarts is caught up by the probe at each (re)start
            git(repo, "commit", "-q", "--allow-empty", "-m", "during restarts")
            commit = await next_event(sub, worklog_kind("commit", rec.id))
            assert commit.payload["payload"]["subject"] == "during restarts"
            (repo / "a.py").write_text("after\n")
            await next_event(sub, worklog_kind("files", rec.id))
        assert watcher.opened == 3
        assert s.scribe.capture_info(rec.id) is not None


async def test_a_watcher_that_keeps_failing_fails_the_session(pg_url: str, repo: Path) -> None:
    policy = engine.RestartPolicy(max_restarts=1, period=60, backoff_initial=0.01)
    config = ScribeConfig(watcher_options=FAST, restart_policy=policy)
    async with open_stack(pg_url, config=config) as s:
        s.scribe._open_watcher = CrashingWatcher(crashes=100)
        async with s.engine.open_subscription(["session.worklog"]) as sub:
            rec = await s.scribe.start(repo)
            stop = await next_event(sub, worklog_kind("session_stop", rec.id))
        assert stop.payload["payload"]["reason"] == "failed"
        await s.scribe.wait_stopped(rec.id)
        stored = await s.registry.get(rec.id)
        assert stored.state is engine.SessionState.FAILED
        assert stored.error is not None and "RestartLimitError" in stored.error


async def test_refused_writes_are_carried_and_nothing_is_acknowledged_early(
    pg_url: str, repo: Path
) -> None:
    async with open_stack(pg_url) as s:
        refusing = RefusingStore(s.store)
        s.scribe.store = refusing  # type: ignore[assignment]
        rec_holder: list[str] = []
        async with s.engine.open_subscription(["session.worklog", "scribe.error"]) as sub:
            rec = await s.scribe.start(repo)
            rec_holder.append(rec.id)
            cap = s.scribe._captures[rec.id]
            cap._store = refusing  # type: ignore[assignment]
            refusing.refuse = 1
            (repo / "first.py").write_text("1\n")
            # the write fails: the batch is carried (not acknowledged), the watcher keeps watching
            err = await next_event(sub, lambda e: e.topic == "scribe.error")
            assert err.payload["carried"] == 1 and "database unavailable" in err.payload["error"]
            # ... and the flusher writes it once the store takes writes again
            first = await next_event(sub, worklog_kind("files", rec.id))
            assert first.payload["seq"] == 2 and cap.info().carried == 0
            # a note refused is not carried: the user is told
            refusing.refuse = 1
            with pytest.raises(engine.WorklogError):
                await s.scribe.append_note(rec.id, "lost, and said so")
            (repo / "second.py").write_text("2\n")
            second = await next_event(sub, worklog_kind("files", rec.id))
            files = [first.payload, second.payload]
        entries = await s.store.entries(rec.id)
        assert [e.seq for e in entries] == [1, 2, 3]
        assert entries[1].payload["created"] == ["first.py"]
        assert entries[2].payload["created"] == ["second.py"]
        assert [f["seq"] for f in files] == [2, 3]
        assert not any(e.kind is EntryKind.NOTE for e in entries)
