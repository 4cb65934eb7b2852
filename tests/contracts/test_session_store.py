"""The session store contract: row versions, lifecycle, tags, queries, purging and orphans."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
import trio
from contracts.backends import SessionsBackend

import engine

S = engine.SessionState


def _record(session_id: str, **fields: object) -> engine.SessionRecord:
    return engine.SessionRecord(id=session_id, name=f"session {session_id}", **fields)  # type: ignore[arg-type]


async def test_register_get_update_with_row_versions(sessions: SessionsBackend) -> None:
    async with sessions.open_stores("engine-a") as (reg, _):
        assert isinstance(reg, engine.SessionStore)
        assert reg.owner_id == "engine-a"
        new = _record(
            "s1",
            kind=engine.SessionKind.DEBUG,
            priority=engine.Priority.HIGH,
            backlog_id="B-1042",
            tags=("feat", "db"),
            description="fix the pool",
            related_ids=("s0",),
            repo_path=Path("/work/repo"),
            idle_timeout=900.0,
            agent_session_id="5f0c8d3e-agent",
        )
        stored = await reg.register(new)
        assert stored.version == 1 and stored.owner == "engine-a"
        assert dataclasses.replace(stored, version=0, owner=None) == dataclasses.replace(
            new, created_at=stored.created_at, last_activity=stored.last_activity
        )
        assert stored.created_at == pytest.approx(new.created_at, abs=1e-5)
        assert await reg.get("s1") == stored

        changed = await reg.update(dataclasses.replace(stored, description="now fixed"))
        assert changed.version == 2 and changed.description == "now fixed"
        assert changed.created_at == stored.created_at
        assert await reg.get("s1") == changed
        with pytest.raises(engine.StoreConflictError) as lost:
            await reg.update(dataclasses.replace(stored, description="stale write"))
        assert (lost.value.expected_version, lost.value.actual_version) == (1, 2)
        assert (await reg.get("s1")).description == "now fixed"

        with pytest.raises(engine.StoreConflictError) as duplicate:
            await reg.register(new)
        assert duplicate.value.expected_version == 0
        assert duplicate.value.actual_version == 2
        with pytest.raises(engine.StoreNotFoundError):
            await reg.get("nope")
        with pytest.raises(engine.StoreNotFoundError):
            await reg.update(dataclasses.replace(stored, id="nope"))
        with pytest.raises(engine.StoreNotFoundError) as parent:
            await reg.register(_record("child", parent_id="missing-parent"))
        assert parent.value.session_id == "missing-parent"
        with pytest.raises(engine.InvalidArgumentError):
            await reg.register(stored)
        with pytest.raises(engine.InvalidArgumentError):
            await reg.update(new)
        other = await reg.register(_record("s2", owner="someone-else"))
        assert other.owner == "someone-else"


async def test_state_changes_follow_the_lifecycle_and_are_versioned(
    sessions: SessionsBackend,
) -> None:
    async with sessions.open_stores() as (reg, _):
        rec = await reg.register(_record("s1", last_activity=time.time() - 3600))
        active = await reg.set_state("s1", S.ACTIVE, expected_version=rec.version)
        assert active.state is S.ACTIVE and active.version == 2
        assert active.last_activity > rec.last_activity  # set_state is activity
        with pytest.raises(engine.StoreConflictError):
            await reg.set_state("s1", S.PAUSED, expected_version=rec.version)
        with pytest.raises(engine.IllegalTransitionError):
            await reg.set_state("s1", S.STARTING, expected_version=active.version)
        failed = await reg.set_state("s1", S.FAILED, expected_version=2, error="boom")
        assert failed.error == "boom" and failed.version == 3
        with pytest.raises(engine.IllegalTransitionError):
            await reg.set_state("s1", S.ACTIVE, expected_version=3)
        with pytest.raises(engine.StoreNotFoundError):
            await reg.set_state("nope", S.ACTIVE, expected_version=1)
        assert await reg.get("s1") == failed


async def test_concurrent_writers_exactly_one_wins(sessions: SessionsBackend) -> None:
    async with sessions.open_stores() as (reg, _):
        rec = await reg.register(_record("hot", state=S.ACTIVE))
        for _ in range(3):
            results: list[engine.SessionRecord | engine.StoreConflictError] = []

            async def writer(
                k: int,
                base: engine.SessionRecord = rec,
                results: list[engine.SessionRecord | engine.StoreConflictError] = results,
            ) -> None:
                try:
                    if k % 2:
                        done = await reg.update(dataclasses.replace(base, description=f"w{k}"))
                    else:
                        target = S.PAUSED if base.state is S.ACTIVE else S.ACTIVE
                        done = await reg.set_state("hot", target, expected_version=base.version)
                    results.append(done)
                except engine.StoreConflictError as exc:
                    results.append(exc)

            async with trio.open_nursery() as nursery:
                for k in range(6):
                    nursery.start_soon(writer, k)
            winners = [r for r in results if isinstance(r, engine.SessionRecord)]
            losers = [r for r in results if isinstance(r, engine.StoreConflictError)]
            assert len(winners) == 1 and len(losers) == 5
            assert all(e.actual_version == rec.version + 1 for e in losers)
            rec = await reg.get("hot")
            assert rec == winners[0]


async def test_tags_touch_and_queries(sessions: SessionsBackend) -> None:
    async with sessions.open_stores("me") as (reg, _):
        await reg.register(_record("a", tags=("x",), kind=engine.SessionKind.PLANNING))
        await reg.register(
            _record(
                "b",
                tags=("x", "y"),
                priority=engine.Priority.HIGH,
                state=S.ACTIVE,
                backlog_id="B-1",
            )
        )
        await reg.register(_record("c", tags=("y",), parent_id="b", owner="other"))
        tagged = await reg.add_tags("a", ["z", "x", "y"])
        assert tagged.tags == ("x", "z", "y") and tagged.version == 2
        untagged = await reg.remove_tags("a", ["z"])
        assert untagged.tags == ("x", "y") and untagged.version == 3
        assert await reg.get("a") == untagged
        with pytest.raises(engine.StoreNotFoundError):
            await reg.add_tags("nope", ["x"])
        with pytest.raises(engine.StoreNotFoundError):
            await reg.remove_tags("nope", ["x"])
        with pytest.raises(engine.InvalidArgumentError):
            await reg.add_tags("a", ["has space"])

        async def ids(**filters: object) -> list[str]:
            return [r.id for r in await reg.query(**filters)]  # type: ignore[arg-type]

        assert await ids() == ["a", "b", "c"]
        assert await ids(tags=["x", "y"]) == ["a", "b"]
        assert await ids(states=[S.ACTIVE]) == ["b"]
        assert await ids(states=[S.STARTING, S.ACTIVE], tags=["y"]) == ["a", "b", "c"]
        assert await ids(states=[]) == []
        assert await ids(kind=engine.SessionKind.PLANNING) == ["a"]
        assert await ids(priority=engine.Priority.HIGH) == ["b"]
        assert await ids(owner="other") == ["c"]
        assert await ids(owner="me") == ["a", "b"]
        assert await ids(backlog_id="B-1") == ["b"]
        assert await ids(parent_id="b") == ["c"]
        assert await ids(limit=2) == ["a", "b"]
        with pytest.raises(engine.InvalidArgumentError):
            await reg.query(tags="x")
        for bad in (0, -1, True):  # a limit is an int >= 1 (the shared store rules)
            with pytest.raises(engine.InvalidArgumentError):
                await reg.query(limit=bad)

        before = await reg.get("b")
        await reg.touch("b", at=before.last_activity + 60)
        after = await reg.get("b")
        assert after.last_activity == pytest.approx(before.last_activity + 60, abs=1e-5)
        assert after.version == before.version
        with pytest.raises(engine.StoreNotFoundError):
            await reg.touch("nope")


async def test_agent_session_ids_and_work_trees_are_stored_and_queried(
    sessions: SessionsBackend,
) -> None:
    async with sessions.open_stores("me") as (reg, _):
        agent = "c" * engine.NAME_MAX  # the longest an agent's id may be
        a = await reg.register(_record("a", agent_session_id=agent, repo_path=Path("/w/one")))
        await reg.register(_record("b", agent_session_id="other", repo_path=Path("/w/two")))
        await reg.register(_record("c", agent_session_id=agent, state=S.ACTIVE))
        await reg.register(_record("d", repo_path=Path("/w/one/sub")))
        assert a.agent_session_id == agent and (await reg.get("a")).agent_session_id == agent
        assert (await reg.get("d")).agent_session_id is None

        async def ids(**filters: object) -> list[str]:
            return [r.id for r in await reg.query(**filters)]  # type: ignore[arg-type]

        assert await ids(agent_session_id=agent) == ["a", "c"]
        assert await ids(agent_session_id=agent, states=[S.ACTIVE]) == ["c"]
        assert await ids(agent_session_id="nobody") == []
        assert await ids(repo_path="/w/one") == ["a"]  # exact: not the one below it
        assert await ids(repo_path=Path("/w/one/")) == ["a"]
        assert await ids(repo_path="/w/one/sub") == ["d"]
        assert await ids(repo_path="/w/one", agent_session_id="other") == []
        assert await ids(repo_path="/w") == []

        # The id is a field like the others: kept by state changes and orphan marking, written by
        # update (and cleared with None).
        active = await reg.set_state("a", S.ACTIVE, expected_version=a.version)
        assert active.agent_session_id == agent
        moved = await reg.update(dataclasses.replace(active, agent_session_id="  moved  "))
        assert moved.agent_session_id == "moved" and await reg.get("a") == moved
        assert await ids(agent_session_id="moved") == ["a"]
        cleared = await reg.update(dataclasses.replace(moved, agent_session_id=None))
        assert cleared.agent_session_id is None and await reg.get("a") == cleared
        async with sessions.open_stores("gone") as (gone, _):
            await gone.register(_record("e", agent_session_id="left", state=S.ACTIVE))
        [orphan] = await reg.mark_orphans()
        assert orphan.id == "e" and orphan.agent_session_id == "left"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("x" * (engine.NAME_MAX + 1), engine.FieldLimitError),
        ("", engine.InvalidArgumentError),
        ("   ", engine.InvalidArgumentError),
        ("a\nb", engine.InvalidArgumentError),
        (5, engine.InvalidArgumentError),
    ],
)
def test_a_bad_agent_session_id_is_refused_on_construction(value: object, error: type) -> None:
    with pytest.raises(error, match="agent session id"):
        _record("s", agent_session_id=value)


async def test_purge_deletes_old_finished_sessions_with_their_worklog(
    sessions: SessionsBackend,
) -> None:
    async with sessions.open_stores() as (reg, worklog):
        old = time.time() - 10 * 86400
        for sid, state in (
            ("old-done", S.COMPLETED),
            ("old-failed", S.FAILED),
            ("old-live", S.ACTIVE),
        ):
            await reg.register(_record(sid, state=state, last_activity=old))
        await reg.register(_record("new-done", state=S.COMPLETED))
        await reg.register(_record("child", parent_id="old-done"))
        entry = engine.WorklogEntry(
            "old-done", 1, engine.EntryKind.NOTE, old, {"text": "kept until purged"}
        )
        await worklog.append([entry])
        await worklog.save_summary(engine.Summary("old-done", 1, created_at=old))
        # the append moved last_activity forward only up to the entry's own time
        assert (await reg.get("old-done")).last_activity == pytest.approx(old, abs=1e-5)

        assert await reg.purge_finished(7, states=[S.FAILED]) == 1
        assert await reg.purge_finished(7) == 1
        assert await reg.purge_finished(7) == 0
        assert {r.id for r in await reg.query()} == {"old-live", "new-done", "child"}
        assert (await reg.get("child")).parent_id is None
        assert await worklog.entries("old-done") == []
        assert await worklog.last_seq("old-done") == 0
        assert await worklog.latest_summary("old-done") is None
        with pytest.raises(engine.InvalidArgumentError):
            await reg.purge_finished(-1)


async def test_a_closed_owner_leaves_its_live_sessions_to_be_marked_once(
    sessions: SessionsBackend,
) -> None:
    async with sessions.open_stores("first") as (first, _):
        await first.register(_record("left-active", state=S.ACTIVE))
        await first.register(_record("left-paused", state=S.PAUSED))
        await first.register(_record("done", state=S.COMPLETED))
        async with sessions.open_stores("watcher") as (watcher, _):
            assert await watcher.find_orphans() == []  # its owner is alive
    async with (
        sessions.open_stores("second") as (second, _),
        sessions.open_stores("third") as (
            third,
            _,
        ),
    ):
        await second.register(_record("mine", state=S.ACTIVE))
        found = await second.find_orphans()
        assert [r.id for r in found] == ["left-active", "left-paused"]
        assert all(r.owner == "first" for r in found)
        async with trio.open_nursery() as nursery:
            marks: list[list[engine.SessionRecord]] = []

            async def mark(store: engine.SessionStore) -> None:
                marks.append(await store.mark_orphans())

            nursery.start_soon(mark, second)
            nursery.start_soon(mark, third)
        marked = [r for batch in marks for r in batch]
        assert sorted(r.id for r in marked) == ["left-active", "left-paused"]
        for r in marked:
            assert r.state is S.ORPHANED and r.version == 2 and "first" in (r.error or "")
            assert await second.get(r.id) == r
        assert await second.find_orphans() == []
        assert await third.find_orphans() == []  # "mine" belongs to a live owner
        assert (await second.get("done")).state is S.COMPLETED
        assert (await second.get("mine")).state is S.ACTIVE


async def test_an_orphan_is_adopted_by_one_owner_and_owners_are_listed(
    sessions: SessionsBackend,
) -> None:
    async with sessions.open_stores("gone") as (gone, _):
        await gone.register(_record("o", state=S.ACTIVE))
        await gone.register(_record("live", state=S.ACTIVE))
    async with (
        sessions.open_stores("second") as (second, _),
        sessions.open_stores("third") as (third, _),
    ):
        with pytest.raises(engine.IllegalTransitionError):
            await second.adopt("o")  # not orphaned yet
        await second.mark_orphans()
        async with trio.open_nursery() as nursery:
            won: list[engine.SessionRecord] = []
            lost: list[Exception] = []

            async def adopt(store: engine.SessionStore) -> None:
                try:
                    won.append(await store.adopt("o"))
                except engine.IllegalTransitionError as exc:
                    lost.append(exc)

            nursery.start_soon(adopt, second)
            nursery.start_soon(adopt, third)
        assert len(won) == len(lost) == 1
        [record] = won
        assert record.state is S.ACTIVE and record.error is None and record.version == 3
        assert record.owner in ("second", "third") and await second.get("o") == record
        with pytest.raises(engine.StoreNotFoundError):
            await second.adopt("nothing")
        owners = await second.owners()
        assert {"gone", "second", "third"} <= set(owners)
        assert owners["second"].alive and not owners["gone"].alive
        assert set(await second.owners(["second"])) == {"second"}


@pytest.mark.parametrize("after", [0, 1, 5])
async def test_a_cancelled_write_is_made_whole_or_not_at_all(
    sessions: SessionsBackend, after: int
) -> None:
    async with sessions.open_stores() as (reg, _):
        rec = await reg.register(_record("s", state=S.ACTIVE))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(reg.register, _record("new", tags=("a", "b")))
            nursery.start_soon(reg.update, dataclasses.replace(rec, description="changed"))
            for _ in range(after):  # let the writes get under way before the cancel lands
                await trio.lowlevel.checkpoint()
            nursery.cancel_scope.cancel()
        current = await reg.get("s")
        assert (current.version, current.description) in ((1, ""), (2, "changed"))
        stored = await reg.query(tags=["a"])
        assert stored == [] or [(r.id, r.tags, r.version) for r in stored] == [
            ("new", ("a", "b"), 1)
        ]
