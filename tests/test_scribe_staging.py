"""Staging refreshes a live session's context; the scribe's own git reads never feed back into it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from git_repos import git, make_repo
from scribe_support import next_event, open_stack, worklog_kind

from engine import Event, Subscription
from engine._ports._worklog_records import EntryKind

FILES = {f"src/m{i}.py": f"v = {i}\n" for i in range(6)} | {"README.md": "# r\n"}
ROLE = "implementer"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "work", files=FILES)
    git(root, "checkout", "-q", "-b", "feat/B-9")
    return root


def _index(root: Path) -> tuple[int, int, int]:
    st = os.stat(root / ".git" / "index")
    return st.st_ino, st.st_mtime_ns, st.st_size


def _files_entry(session_id: str, path: str) -> Callable[[Event], bool]:
    def check(e: Event) -> bool:
        p = e.payload.get("payload", {})
        return worklog_kind("files", session_id)(e) and any(
            path in p.get(k, ()) for k in ("created", "modified", "deleted")
        )

    return check


async def _barrier(sub: Subscription, sid: str, root: Path, name: str) -> list[Event]:
    """Write a new file and wait for its worklog entry: every change made before it has been handled
    by then. Returns the events seen meanwhile."""
    seen: list[Event] = []
    (root / name).write_text("sentinel\n")

    def check(e: Event) -> bool:
        seen.append(e)
        return _files_entry(sid, name)(e)

    await next_event(sub, check)
    return seen


def _status_entry(status: dict[str, Any], path: str) -> dict[str, Any]:
    (entry,) = [e for e in status["changed"] if e["path"] == path]
    return dict(entry)


async def test_git_add_alone_dirties_status_and_diff(pg_url: str, repo: Path) -> None:
    (repo / "src" / "m1.py").write_text("v = 100\nw = 2\n")
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo)
        sid = rec.id
        async with s.engine.open_subscription(["session.worklog", "session.context"]) as sub:
            await _barrier(sub, sid, repo, "ready.txt")  # the watcher is armed and idle
            ctx = await s.context.context(sid, ROLE)
            assert _status_entry(ctx.value("status"), "src/m1.py")["index"] == "."
            assert s.context.dirty(sid) & {"status", "diff"} == set()
            entries = len(await s.store.entries(sid))

            git(repo, "add", "src/m1.py")  # the real git command line; nothing else changes
            ev = await next_event(
                sub,
                lambda e: (
                    e.topic == "session.context"
                    and e.session_id == sid
                    and e.payload.get("event") == "dirty"
                ),
            )
            assert {"status", "diff"} <= set(ev.payload["sources"])
            assert {"status", "diff"} <= s.context.dirty(sid)
            assert "files" not in ev.payload["sources"]  # no work-tree path changed

            ctx = await s.context.context(sid, ROLE)
            entry = _status_entry(ctx.value("status"), "src/m1.py")
            assert (entry["index"], entry["worktree"]) == ("M", ".")
            assert not ctx.sources["status"].cached and not ctx.sources["diff"].cached
            diff = {f["path"]: f for f in ctx.value("diff")["files"]}
            assert (diff["src/m1.py"]["added"], diff["src/m1.py"]["deleted"]) == (2, 1)

            # staging made no worklog entry: the next entry is the barrier's own
            await _barrier(sub, sid, repo, "barrier.txt")
            stored = await s.store.entries(sid)
            assert [e.kind for e in stored[entries:]] == [EntryKind.FILES]
            assert stored[-1].payload["created"] == ["barrier.txt"]


async def test_an_idle_repository_with_a_live_context_stays_quiet(pg_url: str, repo: Path) -> None:
    """Our own reads write no index, so reading the context never dirties it again.

    Files whose stat data changed but whose content did not are what makes ``git diff`` rewrite the
    index by itself; each round makes some, lets the context refresh, then checks that the refresh
    changed the index not at all and that nothing but the next change dirtied the context.
    """
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo)
        sid = rec.id
        async with s.engine.open_subscription(["session.worklog", "session.context"]) as sub:
            await _barrier(sub, sid, repo, "ready.txt")  # the watcher is armed and idle
            await s.context.context(sid, ROLE)
            for round_ in range(3):
                when = 1_000_000_000 + round_ * 1000
                touched = [f"src/m{i}.py" for i in range(6)]
                for i, path in enumerate(touched):
                    os.utime(repo / path, (when + i, when + i))
                await _barrier(sub, sid, repo, f"touch-{round_}.txt")
                assert {"status", "diff"} <= s.context.dirty(sid)
                before = _index(repo)
                ctx = await s.context.context(sid, ROLE)
                assert ctx.ok and not ctx.sources["diff"].cached
                assert ctx.value("diff")["files"] == []  # only stat data changed
                assert _index(repo) == before, f"round {round_}: a read wrote the index"
                assert s.context.dirty(sid) & {"status", "diff"} == set()

                seen = await _barrier(sub, sid, repo, f"after-{round_}.txt")
                dirty = [
                    e
                    for e in seen
                    if e.topic == "session.context" and e.payload.get("event") == "dirty"
                ]
                # one dirtying, by the barrier's own file, and refreshed for that path alone
                assert len(dirty) == 1, [e.payload for e in seen]
                refreshed = s.context.statistics().refreshed
                ctx = await s.context.context(sid, ROLE)
                assert s.context.statistics().refreshed == refreshed + 2
                assert f"after-{round_}.txt" in ctx.value("status")["untracked"]
