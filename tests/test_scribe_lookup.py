"""Finding sessions as a coding agent does: by its own session id, by work tree, and a worklog read
from where the agent left off. Real git repositories, the real watcher and the real database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
import trio.lowlevel
from git_repos import git, make_repo, real
from scribe_support import open_stack

import adapters
import engine
from engine import SessionRecord, SessionState

S = SessionState


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "work", files={"src/app.py": "x = 1\n"})
    git(root, "checkout", "-q", "-b", "feat/B-41-agents")
    return root


@pytest.fixture
def other(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "other", files={"y.py": "y = 1\n"})


async def test_a_second_start_with_the_agent_id_answers_its_live_session(
    fresh_pg_url: str, repo: Path, other: Path
) -> None:
    async with open_stack(fresh_pg_url) as s:
        first = await s.scribe.start(repo, agent_session_id="  claude-5f0c  ")
        assert first.agent_session_id == "claude-5f0c" and first.state is S.ACTIVE
        assert (await s.registry.get(first.id)).agent_session_id == "claude-5f0c"
        [start] = await s.store.entries(first.id)
        assert start.payload["agent_session_id"] == "claude-5f0c"

        # Again (from a directory inside the work tree, with other arguments): the same session.
        again = await s.scribe.start(repo / "src", agent_session_id="claude-5f0c", tags=("x",))
        assert again.id == first.id and again.tags == ()
        # A start hook firing twice at once starts nothing more either.
        got: list[SessionRecord] = []

        async def hook() -> None:
            got.append(await s.scribe.start(repo, agent_session_id="claude-5f0c"))

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(hook)
        assert {r.id for r in got} == {first.id}
        assert s.scribe.live() == [first.id]

        # On another work tree it is refused, and nothing is started.
        with pytest.raises(engine.InvalidArgumentError, match="already has live session") as info:
            await s.scribe.start(other, agent_session_id="claude-5f0c")
        assert first.id in str(info.value) and str(real(repo)) in str(info.value)
        assert [r.id for r in await s.registry.query()] == [first.id]

        # Two concurrent first starts of a new agent id make one session.
        got.clear()

        async def first_hook() -> None:
            got.append(await s.scribe.start(other, agent_session_id="b"))

        async with trio.open_nursery() as nursery:
            for _ in range(2):
                nursery.start_soon(first_hook)
        assert len({r.id for r in got}) == 1
        assert len(await s.registry.query(agent_session_id="b")) == 1

        # Once it is ending, the agent id starts a new session, on any work tree.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(s.scribe.stop, first.id)
            while not s.scribe._captures[first.id].stopping:
                await trio.lowlevel.checkpoint()
            second = await s.scribe.start(repo, agent_session_id="claude-5f0c")
        assert second.id != first.id and second.state is S.ACTIVE
        assert (await s.registry.get(first.id)).state is S.COMPLETED
        await s.scribe.stop(second.id)
        third = await s.scribe.start(other, agent_session_id="claude-5f0c")
        assert third.repo_path == real(other)
        # Without an agent id, starts are never merged.
        plain = [await s.scribe.start(repo), await s.scribe.start(repo)]
        assert plain[0].id != plain[1].id and plain[0].agent_session_id is None


async def test_only_a_captured_or_owned_session_counts_as_live(
    fresh_pg_url: str, repo: Path
) -> None:
    async with open_stack(fresh_pg_url) as s:
        root = real(repo)
        # Stored as active, but its owner is gone, or it is this process's and nothing captures it.
        for sid, owner in (("dead-owner", "gone"), ("stale-mine", None)):
            await s.registry.register(
                SessionRecord(
                    id=sid, name=sid, state=S.ACTIVE, repo_path=root, owner=owner,
                    agent_session_id=sid,
                )
            )  # fmt: skip
            started = await s.scribe.start(repo, agent_session_id=sid)
            assert started.id != sid and started.agent_session_id == sid
        # One a live engine process owns (another daemon on the same database) counts.
        async with adapters.open_session_registry(s.db, owner_id="other-daemon") as elsewhere:
            theirs = await elsewhere.register(
                SessionRecord(
                    id="theirs", name="theirs", state=S.ACTIVE, repo_path=root,
                    agent_session_id="shared",
                )
            )  # fmt: skip
            assert (await s.scribe.start(repo, agent_session_id="shared")).id == theirs.id


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("a" * (engine.NAME_MAX + 1), engine.FieldLimitError),
        ("", engine.InvalidArgumentError),
        ("bad\x1bid", engine.InvalidArgumentError),
        (7, engine.InvalidArgumentError),
    ],
)
async def test_a_bad_agent_id_starts_nothing(
    fresh_pg_url: str, repo: Path, value: object, error: type[Exception]
) -> None:
    async with open_stack(fresh_pg_url) as s:
        with pytest.raises(error, match="agent session id"):
            await s.scribe.start(repo, agent_session_id=value)  # type: ignore[arg-type]
        assert await s.registry.query() == [] and s.scribe.live() == []


async def test_a_reference_may_be_the_agent_session_id(fresh_pg_url: str, repo: Path) -> None:
    async with open_stack(fresh_pg_url) as s:
        reg = s.registry

        async def put(sid: str, at: float, **fields: object) -> None:
            await reg.register(SessionRecord(id=sid, name=sid, created_at=at, **fields))  # type: ignore[arg-type]

        await put("old-live", 100.0, state=S.ACTIVE, agent_session_id="agent-a")
        await put("new-done", 200.0, state=S.COMPLETED, agent_session_id="agent-a")
        assert (await s.scribe.resolve("agent-a")).id == "old-live"  # the newest live one
        await put("done-1", 100.0, state=S.COMPLETED, agent_session_id="agent-b")
        await put("done-2", 300.0, state=S.FAILED, agent_session_id="agent-b")
        assert (await s.scribe.resolve(" agent-b ")).id == "done-2"  # else the newest
        # An exact session id comes first; the agent id before prefixes and backlog ids.
        await put("agent-b", 50.0, state=S.COMPLETED)
        assert (await s.scribe.resolve("agent-b")).id == "agent-b"
        await put("pref-1234", 400.0, backlog_id="B-9")
        await put("by-agent-1", 10.0, agent_session_id="pref")
        await put("by-agent-2", 20.0, agent_session_id="B-9")
        assert (await s.scribe.resolve("pref")).id == "by-agent-1"
        assert (await s.scribe.resolve("B-9")).id == "by-agent-2"
        assert (await s.scribe.resolve("pref-12")).id == "pref-1234"
        with pytest.raises(engine.SessionNotFoundError):
            await s.scribe.resolve("agent-c")

        # Every call naming a session takes it: a note, the worklog, stop.
        live = await s.scribe.start(repo, agent_session_id="claude-77")
        entry = await s.scribe.append_note("claude-77", "from the agent")
        assert entry.session_id == live.id
        record, entries = await s.scribe.worklog("claude-77")
        assert record.id == live.id and entries[-1].payload["text"] == "from the agent"
        assert (await s.scribe.stop("claude-77")).state is S.COMPLETED


async def test_sessions_of_one_work_tree(
    fresh_pg_url: str, repo: Path, other: Path, tmp_path: Path
) -> None:
    async with open_stack(fresh_pg_url) as s:
        a = await s.scribe.start(repo)
        b = await s.scribe.start(other)
        c = await s.scribe.start(repo / "src")
        await s.scribe.stop(c.id)
        assert [r.id for r in await s.scribe.sessions(repo=repo)] == [a.id, c.id]
        assert [r.id for r in await s.scribe.sessions(repo=str(other))] == [b.id]
        # A directory inside the work tree, a symlink to it, a path with ".." in it: the same.
        link = tmp_path / "link"
        link.symlink_to(repo, target_is_directory=True)
        for where in (repo / "src", link, link / "src", repo / "src" / ".."):
            assert [r.id for r in await s.scribe.sessions(repo=where)] == [a.id, c.id], where
        # With the other filters and pages.
        assert [r.id for r in await s.scribe.sessions(repo=repo, states=[S.ACTIVE])] == [a.id]
        assert [r.id for r in await s.scribe.sessions(repo=repo, after=a.id)] == [c.id]
        assert [r.id for r in await s.scribe.sessions(repo=repo, limit=1)] == [a.id]
        # A nested repository is a work tree of its own.
        nested = make_repo(repo / "vendor" / "lib", files={"z.py": "z\n"})
        assert await s.scribe.sessions(repo=nested) == []

        plain = tmp_path / "plain"
        plain.mkdir()
        for bad in (tmp_path / "does-not-exist", plain, repo / "src" / "app.py"):
            with pytest.raises(engine.NotARepositoryError):
                await s.scribe.sessions(repo=bad)
        with pytest.raises(engine.FieldLimitError, match="repo"):
            await s.scribe.sessions(repo="/" + "p" * engine.PATH_MAX)
        with pytest.raises(engine.InvalidArgumentError):
            await s.scribe.sessions(repo="")
        with pytest.raises(engine.InvalidArgumentError):
            await s.scribe.sessions(repo=5)  # type: ignore[arg-type]
        assert os.fspath(real(repo)) == str((await s.registry.get(a.id)).repo_path)


async def test_a_worklog_since_an_entry(fresh_pg_url: str, repo: Path) -> None:
    async with open_stack(fresh_pg_url) as s:
        rec = await s.scribe.start(repo)
        for i in range(6):
            await s.scribe.append_note(rec.id, f"note {i}")
        _, everything = await s.scribe.worklog(rec.id)
        last = everything[-1].seq
        assert [e.seq for e in everything] == list(range(1, last + 1))

        async def seqs(**kwargs: object) -> list[int]:
            _, entries = await s.scribe.worklog(rec.id, **kwargs)  # type: ignore[arg-type]
            return [e.seq for e in entries]

        assert await seqs(since=0) == list(range(1, last + 1))
        assert await seqs(since=last - 3) == [last - 2, last - 1, last]
        assert await seqs(since=last - 3, limit=2) == [last - 1, last]  # the newest of them
        assert await seqs(since=1, limit=100) == list(range(2, last + 1))
        assert await seqs(since=last) == []
        assert await seqs(since=engine.INT_MAX) == []
        for bad in (-1, True, 1.5, "3", engine.INT_MAX + 1):
            with pytest.raises(engine.InvalidArgumentError, match="since"):
                await seqs(since=bad)
