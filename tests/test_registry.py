"""The session registry over PostgreSQL: row versions, tags, queries, purging and orphans."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

import adapters
import engine

S = engine.SessionState


@asynccontextmanager
async def _registry(
    url: str, owner_id: str | None = None, **kwargs: float
) -> AsyncIterator[adapters.SessionRegistry]:
    async with (
        adapters.open_database(url, pool_size=4) as db,
        adapters.open_session_registry(db, owner_id=owner_id, **kwargs) as registry,
    ):
        yield registry


def _record(session_id: str, **fields: object) -> engine.SessionRecord:
    return engine.SessionRecord(id=session_id, name=f"session {session_id}", **fields)  # type: ignore[arg-type]


async def test_register_get_update_round_trip(fresh_pg_url: str) -> None:
    async with _registry(fresh_pg_url, owner_id="engine-a") as reg:
        assert isinstance(reg, engine.SessionStore)
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
        )
        stored = await reg.register(new)
        assert stored.version == 1 and stored.owner == "engine-a"
        assert dataclasses.replace(stored, version=0, owner=None) == dataclasses.replace(
            new, created_at=stored.created_at, last_activity=stored.last_activity
        )
        assert stored.created_at == pytest.approx(new.created_at, abs=1e-5)
        assert await reg.get("s1") == stored

        changed = await reg.update(dataclasses.replace(stored, description="now fixed", error=None))
        assert changed.version == 2 and changed.description == "now fixed"
        assert changed.created_at == stored.created_at
        assert await reg.get("s1") == changed  # what update() returns is what is stored
        with pytest.raises(engine.StoreConflictError) as lost:
            await reg.update(dataclasses.replace(stored, description="stale write"))
        assert (lost.value.expected_version, lost.value.actual_version) == (1, 2)
        assert (await reg.get("s1")).description == "now fixed"

        with pytest.raises(engine.StoreConflictError) as duplicate:
            await reg.register(new)
        assert duplicate.value.expected_version == 0
        with pytest.raises(engine.StoreNotFoundError):
            await reg.get("nope")
        with pytest.raises(engine.StoreNotFoundError):
            await reg.update(dataclasses.replace(stored, id="nope"))
        with pytest.raises(engine.StoreNotFoundError) as parent:
            await reg.register(_record("child", parent_id="missing-parent"))
        assert parent.value.session_id == "missing-parent"
        with pytest.raises(engine.InvalidArgumentError):
            await reg.register(stored)  # not a new record


async def test_state_changes_are_versioned_and_follow_the_lifecycle(fresh_pg_url: str) -> None:
    async with _registry(fresh_pg_url) as reg:
        rec = await reg.register(_record("s1"))
        active = await reg.set_state("s1", S.ACTIVE, expected_version=rec.version)
        assert active.state is S.ACTIVE and active.version == 2
        with pytest.raises(engine.StoreConflictError):
            await reg.set_state("s1", S.PAUSED, expected_version=rec.version)
        with pytest.raises(engine.IllegalTransitionError):
            await reg.set_state("s1", S.STARTING, expected_version=active.version)
        failed = await reg.set_state("s1", S.FAILED, expected_version=2, error="boom")
        assert failed.error == "boom" and failed.version == 3
        with pytest.raises(engine.IllegalTransitionError):  # final states are final
            await reg.set_state("s1", S.ACTIVE, expected_version=3)
        with pytest.raises(engine.StoreNotFoundError):
            await reg.set_state("nope", S.ACTIVE, expected_version=1)
        assert (await reg.get("s1")).version == 3


async def test_concurrent_updates_exactly_one_wins_each_round(fresh_pg_url: str) -> None:
    async with _registry(fresh_pg_url) as reg:
        rec = await reg.register(_record("hot", state=S.ACTIVE))
        for round_number in range(6):
            results: list[engine.SessionRecord | engine.StoreConflictError] = []

            async def writer(
                k: int, base: engine.SessionRecord = rec, results: list[object] = results
            ) -> None:
                try:
                    if k % 2:
                        results.append(
                            await reg.update(dataclasses.replace(base, description=f"w{k}"))
                        )
                    else:
                        target = S.PAUSED if base.state is S.ACTIVE else S.ACTIVE
                        results.append(
                            await reg.set_state("hot", target, expected_version=base.version)
                        )
                except engine.StoreConflictError as exc:
                    results.append(exc)

            async with trio.open_nursery() as nursery:
                for k in range(8):
                    nursery.start_soon(writer, k)
            winners = [r for r in results if isinstance(r, engine.SessionRecord)]
            losers = [r for r in results if isinstance(r, engine.StoreConflictError)]
            assert len(winners) == 1, f"round {round_number}: {results}"
            assert len(losers) == 7
            assert all(e.actual_version == rec.version + 1 for e in losers)
            rec = await reg.get("hot")
            assert rec == winners[0]


async def test_tags_touch_and_queries(fresh_pg_url: str) -> None:
    async with _registry(fresh_pg_url, owner_id="me") as reg:
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
        with pytest.raises(engine.StoreNotFoundError):
            await reg.add_tags("nope", ["x"])

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
        assert await ids(backlog_id="B-1") == ["b"]
        assert await ids(parent_id="b") == ["c"]
        assert await ids(limit=2) == ["a", "b"]
        with pytest.raises(engine.InvalidArgumentError):
            await reg.query(tags="x")

        before = await reg.get("b")
        await reg.touch("b", at=before.last_activity + 60)
        after = await reg.get("b")
        assert after.last_activity == pytest.approx(before.last_activity + 60, abs=1e-5)
        assert after.version == before.version  # activity is not a versioned change
        with pytest.raises(engine.StoreNotFoundError):
            await reg.touch("nope")


async def test_purge_finished_sessions_older_than_n_days(fresh_pg_url: str) -> None:
    async with _registry(fresh_pg_url) as reg:
        old = time.time() - 10 * 86400
        for sid, state in (
            ("old-done", S.COMPLETED),
            ("old-failed", S.FAILED),
            ("old-live", S.ACTIVE),
        ):
            await reg.register(_record(sid, state=state, last_activity=old))
        await reg.register(_record("new-done", state=S.COMPLETED))
        await reg.register(_record("child", parent_id="old-done"))
        db = reg.database
        await db.execute(
            "INSERT INTO worklog_entries (session_id, seq, kind, payload) VALUES ('old-done', 1, 'note', '{}')"
        )
        await db.execute("INSERT INTO summaries (session_id, version) VALUES ('old-done', 1)")
        assert await reg.purge_finished(7, states=[S.FAILED]) == 1
        assert await reg.purge_finished(7) == 1
        assert {r.id for r in await reg.query()} == {"old-live", "new-done", "child"}
        assert (await reg.get("child")).parent_id is None
        assert await db.fetchval("SELECT count(*) FROM worklog_entries") == 0
        assert await db.fetchval("SELECT count(*) FROM summaries") == 0
        with pytest.raises(engine.InvalidArgumentError):
            await reg.purge_finished(-1)


_OWNER_PROCESS = """
import sys, trio, adapters, engine

async def main(url):
    async with adapters.open_database(url, pool_size=1) as db:
        async with adapters.open_session_registry(db, owner_id="doomed") as reg:
            await reg.register(engine.SessionRecord(id="left-active", name="x", state="active"))
            await reg.register(engine.SessionRecord(id="left-paused", name="x", state="paused"))
            await reg.register(engine.SessionRecord(id="finished", name="x", state="completed"))
            print("ready", flush=True)
            await trio.sleep_forever()

trio.run(main, sys.argv[1])
"""


async def test_sessions_of_a_killed_engine_are_marked_orphaned(fresh_pg_url: str) -> None:
    async with _registry(fresh_pg_url, owner_id="survivor") as reg:
        await reg.register(_record("mine", state=S.ACTIVE))
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-c", _OWNER_PROCESS, fresh_pg_url], stdout=subprocess.PIPE
        )
        try:
            assert proc.stdout is not None
            with trio.fail_after(60):
                line = await proc.stdout.receive_some(100)
            assert line.startswith(b"ready"), line
            # The other engine is alive: nothing of it is orphaned.
            assert await reg.find_orphans() == []
        finally:
            proc.kill()  # SIGKILL: no cleanup runs in the other process
            with trio.CancelScope(shield=True):
                await proc.wait()
                if proc.stdout is not None:
                    await proc.stdout.aclose()
        assert proc.returncode == -signal.SIGKILL

        with trio.fail_after(
            30
        ):  # the server notices the dead client's socket at once; allow a moment
            found = await reg.find_orphans()
            while len(found) < 2:
                await trio.sleep(0.02)
                found = await reg.find_orphans()
        assert [r.id for r in found] == ["left-active", "left-paused"]
        assert all(r.owner == "doomed" for r in found)

        async with _registry(fresh_pg_url, owner_id="another") as rival:
            marks = await reg.mark_orphans(), await rival.mark_orphans()
        marked = [r for batch in marks for r in batch]
        assert sorted(r.id for r in marked) == ["left-active", "left-paused"]  # each marked once
        for r in marked:
            assert r.state is S.ORPHANED and r.version == 2 and "doomed" in (r.error or "")
        assert await reg.find_orphans() == []
        assert (await reg.get("finished")).state is S.COMPLETED
        assert (await reg.get("mine")).state is S.ACTIVE
        # The dead owner's identity stays while sessions name it, no longer alive.
        owners = await reg.owners()
        assert not owners["doomed"].alive and owners["survivor"].alive
        assert owners["doomed"].pid != owners["survivor"].pid
        await reg.purge_finished(0, states=[S.COMPLETED, S.ORPHANED])
        await reg.mark_orphans()
        assert "doomed" not in await reg.owners()


async def test_an_owner_whose_lease_expired_counts_as_gone(fresh_pg_url: str) -> None:
    async with (
        _registry(fresh_pg_url, owner_id="hung", lease=60) as hung,
        _registry(fresh_pg_url, owner_id="watcher", lease=60) as watcher,
    ):
        await hung.register(_record("h1", state=S.ACTIVE))
        assert await watcher.find_orphans() == []
        # The process holds its lock but stopped renewing: hung for longer than its lease.
        await watcher.database.execute(
            "UPDATE engine_owners SET lease_until = now() - interval '1 second' WHERE owner_id = 'hung'"
        )
        assert [r.id for r in await watcher.find_orphans()] == ["h1"]
        # Renewing after the expiry takes a new generation: the old session stays lost to it.
        await hung.heartbeat()
        assert [r.id for r in await watcher.find_orphans()] == ["h1"]


async def test_a_cleanly_closed_owner_leaves_its_live_sessions_to_others(fresh_pg_url: str) -> None:
    async with _registry(fresh_pg_url, owner_id="first") as first:
        await first.register(_record("x", state=S.ACTIVE))
    async with _registry(fresh_pg_url, owner_id="second") as second:
        assert [r.id for r in await second.mark_orphans()] == ["x"]


async def test_heartbeat_keeps_the_owner_alive(fresh_pg_url: str) -> None:
    query = "SELECT heartbeat_at FROM engine_owners WHERE owner_id = 'beater'"
    async with _registry(
        fresh_pg_url, owner_id="beater", heartbeat_interval=0.02, lease=1
    ) as reg:
        first = await reg.database.fetchval(query)
        with trio.fail_after(30):
            later = first
            while later == first:
                await trio.sleep(0.02)
                later = await reg.database.fetchval(query)
        assert later > first
        assert await reg.find_orphans() == []


def test_records_validate_their_fields() -> None:
    rec = engine.SessionRecord(
        id="s", name=" n ", kind="debug", state="active", priority="low", tags=["a", "a"]
    )  # type: ignore[arg-type]
    assert (rec.name, rec.kind, rec.state, rec.priority, rec.tags) == (
        "n",
        engine.SessionKind.DEBUG,
        S.ACTIVE,
        engine.Priority.LOW,
        ("a",),
    )
    for bad in (
        {"id": ""},
        {"name": ""},
        {"kind": "cooking"},
        {"state": "sleeping"},
        {"priority": 7},
        {"tags": "abc"},
        {"parent_id": "s"},
        {"idle_timeout": 0},
        {"version": -1},
        {"related_ids": "x"},
    ):
        fields = {"id": "s", "name": "n", **bad}
        with pytest.raises(engine.InvalidArgumentError):
            engine.SessionRecord(**fields)  # type: ignore[arg-type]
