"""The scribe against real git repositories, the inotify watcher and the real database."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing
from git_repos import git, make_repo, real
from scribe_support import next_event, open_stack, poll_until, worklog_kind

from engine import InvalidArgumentError, SessionClosedError, SessionNotFoundError, SessionState
from engine._ports._worklog_records import EntryKind
from engine._scribe._rules import EndRules
from engine._scribe._scribe_config import ScribeConfig

FILES = {"src/app.py": "print('hi')\n", "README.md": "# demo\n"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "work", files=FILES)
    git(root, "checkout", "-q", "-b", "feat/B-77-login")
    return root


async def test_start_records_backlog_branch_and_start_entry(pg_url: str, repo: Path) -> None:
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo, tags=("api",), kind="debug", priority="high")
        assert rec.backlog_id == "B-77" and rec.state is SessionState.ACTIVE
        assert rec.repo_path == real(repo) and rec.tags == ("api",)
        stored = await s.registry.get(rec.id)
        assert stored.kind.value == "debug" and stored.priority.name == "HIGH"
        entries = await s.store.entries(rec.id)
        assert [e.kind for e in entries] == [EntryKind.SESSION_START]
        assert entries[0].payload["branch"] == "feat/B-77-login"
        assert entries[0].payload["head"] == git(repo, "rev-parse", "HEAD").strip()
        given = await s.scribe.start(repo, backlog_id="b-5", name="other")
        assert given.backlog_id == "B-5" and given.name == "other"
        assert (await s.scribe.resolve("B-77")).id == rec.id
        assert (await s.scribe.resolve(rec.id)).id == rec.id
        if rec.id[:6] == given.id[:6]:
            with pytest.raises(InvalidArgumentError, match="matches 2 sessions"):
                await s.scribe.resolve(rec.id[:6])
        with pytest.raises(SessionNotFoundError):
            await s.scribe.resolve("nothing-like-it")


async def test_edits_become_durable_entries(pg_url: str, repo: Path) -> None:
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo)
        async with s.engine.open_subscription(["session.worklog"]) as sub:
            (repo / "src" / "app.py").write_text("print('changed')\n")
            (repo / "src" / "new.py").write_text("x = 1\n")
            (repo / "image.png").write_bytes(b"\x89PNG")
            seen: dict[str, set[str]] = {"created": set(), "modified": set()}
            while seen != {"created": {"src/new.py"}, "modified": {"src/app.py"}}:
                ev = await next_event(sub, worklog_kind("files", rec.id))
                for key in seen:
                    seen[key] |= set(ev.payload["payload"][key])
            # acknowledged means stored: the entry is in the database when the event is out
            stored = await s.store.entries(rec.id)
            assert stored[-1].seq == ev.payload["seq"]
            (repo / "src" / "new.py").unlink()
            ev = await next_event(sub, worklog_kind("files", rec.id))
            assert ev.payload["payload"]["deleted"] == ["src/new.py"]
        all_files = [e for e in await s.store.entries(rec.id) if e.kind is EntryKind.FILES]
        assert not any("image.png" in e.files for e in all_files)
        assert [e.seq for e in await s.store.entries(rec.id)] == list(
            range(1, len(await s.store.entries(rec.id)) + 1)
        )


async def test_git_ignored_files_make_no_entries(pg_url: str, repo: Path) -> None:
    (repo / ".gitignore").write_text("scratch/\n*.draft.md\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore scratch")
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo)
        async with s.engine.open_subscription(["session.worklog"]) as sub:
            (repo / "scratch").mkdir()
            (repo / "scratch" / "plan.md").write_text("x")
            (repo / "idea.draft.md").write_text("x")
            (repo / "src" / "kept.py").write_text("x")
            created: set[str] = set()
            while "src/kept.py" not in created:
                ev = await next_event(sub, worklog_kind("files", rec.id))
                created |= set(ev.payload["payload"]["created"])
        assert created == {"src/kept.py"}


async def test_commit_becomes_a_commit_entry(pg_url: str, repo: Path) -> None:
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo)
        async with s.engine.open_subscription(["session.worklog"]) as sub:
            (repo / "src" / "app.py").write_text("print('v2')\n")
            (repo / "docs.md").write_text("docs\n")
            git(repo, "add", "--all")
            git(repo, "commit", "-q", "-m", "Add docs and v2")
            ev = await next_event(sub, worklog_kind("commit", rec.id))
        p = ev.payload["payload"]
        assert p["hash"] == git(repo, "rev-parse", "HEAD").strip()
        assert p["subject"] == "Add docs and v2"
        assert sorted(p["files"]) == ["docs.md", "src/app.py"]
        assert p["branch"] == "feat/B-77-login"
        info = s.scribe.capture_info(rec.id)
        assert info is not None and info.head == p["hash"]


async def test_branch_switch_ends_the_session(pg_url: str, repo: Path) -> None:
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo)
        async with s.engine.open_subscription(["session.worklog"]) as sub:
            git(repo, "checkout", "-q", "main")
            switch = await next_event(sub, worklog_kind("branch_switch", rec.id))
            stop = await next_event(sub, worklog_kind("session_stop", rec.id))
        assert switch.payload["payload"]["from"] == "feat/B-77-login"
        assert switch.payload["payload"]["to"] == "main"
        assert stop.payload["payload"]["reason"] == "branch_switch"
        with trio.fail_after(10):
            await s.scribe.wait_stopped(rec.id)
        assert (await s.registry.get(rec.id)).state is SessionState.COMPLETED
        with pytest.raises(SessionClosedError):
            await s.scribe.append_note(rec.id, "too late")
        with pytest.raises(SessionClosedError):
            await s.scribe.stop(rec.id)


async def test_completed_push_ends_the_session(pg_url: str, repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo)
        async with s.engine.open_subscription(["session.worklog"]) as sub:
            (repo / "src" / "app.py").write_text("print('ship it')\n")
            git(repo, "commit", "-q", "-am", "Ship it")
            await next_event(sub, worklog_kind("commit", rec.id))
            git(repo, "push", "-q", "-u", "origin", "feat/B-77-login")
            push = await next_event(sub, worklog_kind("push", rec.id))
            stop = await next_event(sub, worklog_kind("session_stop", rec.id))
        assert push.payload["payload"]["upstream"] == "origin/feat/B-77-login"
        assert stop.payload["payload"]["reason"] == "push_completed"


async def test_push_rule_can_be_turned_off(pg_url: str, repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    config = ScribeConfig(
        end_rules=EndRules(on_push=False),
        watcher_options={"quiet": 0.01, "cap": 0.1, "reconcile_interval": None},
    )
    async with open_stack(pg_url, config=config) as s:
        rec = await s.scribe.start(repo)
        async with s.engine.open_subscription(["session.worklog"]) as sub:
            git(repo, "push", "-q", "-u", "origin", "feat/B-77-login")
            await next_event(sub, worklog_kind("push", rec.id))
            note = await s.scribe.append_note(rec.id, "still here")
        assert note.kind is EntryKind.NOTE
        assert s.scribe.capture_info(rec.id) is not None


@pytest.fixture
def clock() -> trio.testing.MockClock:
    # Runs at the speed of real time (the watcher's debounce and the database's threads need that),
    # and can be jumped forward.
    return trio.testing.MockClock(rate=1.0)


async def test_idle_timeout_ends_the_session(
    pg_url: str, repo: Path, clock: trio.testing.MockClock
) -> None:
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo, idle_timeout=600)
        keep = await s.scribe.start(repo, idle_timeout=None, name="no timeout")
        async with s.engine.open_subscription(["session.worklog"]) as sub:
            clock.jump(500)
            await s.scribe.append_note(rec.id, "activity resets the timer")
            clock.jump(500)
            await trio.sleep(0.05)
            assert s.scribe.capture_info(rec.id) is not None
            clock.jump(101)
            stop = await next_event(sub, worklog_kind("session_stop", rec.id))
        assert stop.payload["payload"]["reason"] == "idle_timeout"
        with trio.fail_after(10):
            await s.scribe.wait_stopped(rec.id)
        assert (await s.registry.get(rec.id)).state is SessionState.COMPLETED
        assert s.scribe.capture_info(keep.id) is not None


async def test_notes_tags_and_stop(pg_url: str, repo: Path) -> None:
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo)
        note = await s.scribe.append_note(rec.id, "Decision: keep it small")
        assert note.seq == 2 and (await s.store.entries(rec.id))[-1] == note
        with pytest.raises(InvalidArgumentError):
            await s.scribe.append_note(rec.id, "   ")
        tagged = await s.scribe.tag(rec.id, ["x", "y"])
        assert tagged.tags == ("x", "y")
        untagged = await s.scribe.tag(rec.id, ["x"], remove=True)
        assert untagged.tags == ("y",)
        assert [r.id for r in await s.scribe.sessions(tags=["y"])] == [rec.id]
        done = await s.scribe.stop(rec.id)
        assert done.state is SessionState.COMPLETED
        last = (await s.store.entries(rec.id))[-1]
        assert last.kind is EntryKind.SESSION_STOP and last.payload["reason"] == "requested"


async def test_summaries_appear_update_and_finish(pg_url: str, repo: Path) -> None:
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo)
        async with s.engine.open_subscription(["session.summary"]) as sub:
            note = await s.scribe.append_note(rec.id, "Decision: parse lazily")
            first = await next_event(
                sub, lambda e: e.session_id == rec.id and e.payload["last_seq"] >= note.seq
            )
            v1 = await s.store.latest_summary(rec.id)
            assert v1 is not None and v1.decisions == ("parse lazily",)
            assert first.payload["version"] == v1.version
            note2 = await s.scribe.append_note(rec.id, "- [ ] benchmark it")
            await next_event(
                sub, lambda e: e.session_id == rec.id and e.payload["last_seq"] >= note2.seq
            )
            v2 = await s.store.latest_summary(rec.id)
            assert v2 is not None and v2.next_steps == ("benchmark it",)
            assert v2.decisions == ("parse lazily",) and v2.version > v1.version
            await s.scribe.stop(rec.id)
            await next_event(sub, lambda e: e.session_id == rec.id and e.payload.get("final"))
        final = await s.store.latest_summary(rec.id)
        assert final is not None and final.final
        assert final.metadata["end_reason"] == "requested"
        versions = [x.version for x in await s.store.summaries(rec.id)]
        assert versions == list(range(1, len(versions) + 1))


async def test_mirror_file_follows_the_worklog(pg_url: str, repo: Path) -> None:
    config = ScribeConfig(
        mirror=".scribe/{backlog}.md",
        mirror_delay=0.0,
        watcher_options={"quiet": 0.01, "cap": 0.1, "reconcile_interval": None},
    )
    async with open_stack(pg_url, config=config) as s:
        rec = await s.scribe.start(repo)
        await s.scribe.append_note(rec.id, "mirrored note")
        mirror = repo / ".scribe" / "B-77.md"
        await poll_until(lambda: mirror.exists() and "mirrored note" in mirror.read_text())
        assert mirror.read_text().startswith("# Worklog: ")
        assert (repo / ".scribe" / ".gitignore").read_text() == "*\n"
        # the mirror neither becomes an entry nor dirties the tree for git
        assert git(repo, "status", "--porcelain") == ""
        await s.scribe.stop(rec.id)
        assert "Session stopped" in mirror.read_text()
        kinds = [e.kind for e in await s.store.entries(rec.id)]
        assert EntryKind.FILES not in kinds


async def test_shutdown_stops_live_sessions(pg_url: str, repo: Path) -> None:
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo)
        store, registry = s.store, s.registry
        db = s.db
    del db
    async with open_stack(pg_url) as s2:
        stored = await s2.registry.get(rec.id)
        assert stored.state is SessionState.COMPLETED
        last = (await s2.store.entries(rec.id))[-1]
        assert last.kind is EntryKind.SESSION_STOP and last.payload["reason"] == "shutdown"
    del store, registry


async def test_start_refuses_a_directory_that_is_not_a_repository(
    pg_url: str, tmp_path: Path
) -> None:
    import engine

    plain = tmp_path / "plain"
    plain.mkdir()
    async with open_stack(pg_url) as s:
        with pytest.raises(engine.NotARepositoryError):
            await s.scribe.start(plain)
        with pytest.raises(InvalidArgumentError):
            await s.scribe.start(plain, idle_timeout=-1)
        assert s.scribe.live() == []


async def test_the_feed_serves_worklog_entries(pg_url: str, repo: Path) -> None:
    import adapters

    secret = "s" * 40
    async with open_stack(pg_url) as s:
        rec = await s.scribe.start(repo)
        async with adapters.open_feed_server(s.engine, secret=secret) as feed:
            token = adapters.make_token(secret, adapters.FeedScopes.read_all(), 60)
            async with adapters.open_feed_client(feed.url, token) as client:
                await client.subscribe(f"worklog:{rec.id}")
                (repo / "src" / "app.py").write_text("print('fed')\n")
                with trio.fail_after(10):
                    while True:
                        msg = await client.receive()
                        updates = (
                            [msg]
                            if isinstance(msg, adapters.FeedUpdate)
                            else list(getattr(msg, "events", ()))
                        )
                        kinds = [u.data.get("kind") for u in updates]
                        if "files" in kinds:
                            break
        got = updates[kinds.index("files")].data
        assert got["payload"]["modified"] == ["src/app.py"]
        stored = await s.store.entries(rec.id)
        assert stored[got["seq"] - 1].payload["modified"] == ["src/app.py"]
