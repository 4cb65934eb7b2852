"""Owner leases over PostgreSQL: every write to a session is fenced by the writer's lease generation."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

import adapters
import engine

S = engine.SessionState


@asynccontextmanager
async def _daemon(
    url: str, owner_id: str, name: str = ""
) -> AsyncIterator[tuple[adapters.SessionRegistry, adapters.PostgresWorklogStore]]:
    async with (
        adapters.open_database(url, pool_size=2) as db,
        adapters.open_session_registry(db, owner_id=owner_id, name=name, lease=60) as registry,
    ):
        yield registry, adapters.PostgresWorklogStore(db, registry.lease)


def _note(sid: str, seq: int) -> engine.WorklogEntry:
    return engine.WorklogEntry(sid, seq, engine.EntryKind.NOTE, time.time(), {"text": f"n{seq}"})


async def _expire(registry: adapters.SessionRegistry, owner_id: str) -> None:
    await registry.database.execute(
        "UPDATE engine_owners SET lease_until = now() - interval '1 second' WHERE owner_id = %s",
        (owner_id,),
    )


async def test_only_the_owner_under_its_lease_writes_a_live_session(
    fresh_pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        _daemon(fresh_pg_url, "a", name="alpha") as (a, a_log),
        _daemon(fresh_pg_url, "b") as (b, b_log),
    ):
        rec = await a.register(engine.SessionRecord(id="s", name="s", state=S.ACTIVE))
        await a_log.append([_note("s", 1)])
        await a_log.save_summary(engine.Summary(session_id="s", version=1, created_at=time.time()))

        # Another daemon writes nothing to a live session it does not own, whatever the call.
        with pytest.raises(engine.NotOwnerError, match="owned by a") as caught:
            await b_log.append([_note("s", 2)])
        assert caught.value.owner == "a" and caught.value.session_id == "s"
        with pytest.raises(engine.NotOwnerError):
            await b.update(rec)
        with pytest.raises(engine.NotOwnerError):
            await b.set_state("s", S.COMPLETED, expected_version=rec.version)
        with pytest.raises(engine.NotOwnerError):
            await b.touch("s")
        with pytest.raises(engine.NotOwnerError):
            await b.add_tags("s", ["x"])
        with pytest.raises(engine.NotOwnerError):
            await b_log.save_summary(
                engine.Summary(session_id="s", version=2, created_at=time.time())
            )
        with pytest.raises(engine.StoreNotFoundError):
            await b_log.append([_note("nobody", 1)])

        owners = await b.owners()
        assert (owners["a"].name, owners["a"].alive, owners["b"].name) == ("alpha", True, "")
        assert owners["a"].generation != owners["b"].generation

        # A's lease runs out: A is fenced at once, before it even notices.
        await _expire(b, "a")
        with pytest.raises(engine.NotOwnerError, match="lease has expired"):
            await a_log.append([_note("s", 2)])
        marked = await b.mark_orphans()
        assert [(r.id, r.state) for r in marked] == [("s", S.ORPHANED)]
        assert not (await b.owners())["a"].alive

        # A comes back: a new generation, a warning, and still nothing written to its old session.
        old = a.lease.generation
        with caplog.at_level(logging.WARNING):
            await a.heartbeat()
        assert a.lease.generation > old
        assert "had expired" in caplog.text and "none of them is written" in caplog.text
        with pytest.raises(engine.NotOwnerError, match=f"generation {old}"):
            await a_log.append([_note("s", 2)])
        assert [e.seq for e in await a_log.entries("s")] == [1]
        assert (await a.owners())["a"].alive

        # Under its new generation A owns what it registers now.
        await a.register(engine.SessionRecord(id="t", name="t", state=S.ACTIVE))
        await a_log.append([_note("t", 1)])
        # A finished session of another daemon takes tags from anyone.
        await a.set_state("t", S.COMPLETED, expected_version=1)
        assert (await b.add_tags("t", ["done"])).tags == ("done",)


async def test_a_daemon_that_lost_its_lease_orphans_its_own_old_sessions(fresh_pg_url: str) -> None:
    async with _daemon(fresh_pg_url, "solo") as (reg, _):
        await reg.register(engine.SessionRecord(id="old", name="old", state=S.ACTIVE))
        await _expire(reg, "solo")
        await reg.heartbeat()
        await reg.register(engine.SessionRecord(id="new", name="new", state=S.ACTIVE))
        assert [r.id for r in await reg.mark_orphans()] == ["old"]
        assert (await reg.get("new")).state is S.ACTIVE
