"""The relay of other daemons' changes: notices become bus events, each entry published once and in
order, a resync catches up from the store, and this daemon's own changes are left to its captures."""

from __future__ import annotations

import time

import trio

import adapters
import engine
from engine._scribe._remote_relay import RemoteRelay

K = engine.NoticeKind


def _note(sid: str, seq: int) -> engine.WorklogEntry:
    return engine.WorklogEntry(sid, seq, engine.EntryKind.NOTE, time.time(), {"text": f"n{seq}"})


async def test_entries_are_relayed_once_in_order_and_caught_up_after_a_break(
    fresh_pg_url: str,
) -> None:
    async with (
        adapters.open_database(fresh_pg_url, pool_size=2) as db,
        adapters.open_session_registry(db, owner_id="other", lease=60) as other,
        adapters.open_session_registry(db, owner_id="me", lease=60) as mine,
        engine.open_engine(engine.EngineConfig(shutdown_grace=0.5)) as eng,
        eng.open_subscription(["session.*"]) as events,
    ):
        log = adapters.PostgresWorklogStore(db, other.lease)
        my_log = adapters.PostgresWorklogStore(db, mine.lease)
        captured: list[str] = []
        relay = RemoteRelay(eng, mine, my_log, lambda: captured)

        def published() -> list[tuple[str, str | None, object]]:
            out = []
            while True:
                try:
                    e = events.receive_nowait()
                except trio.WouldBlock:
                    return out
                key = {
                    "session.worklog": e.payload.get("seq"),
                    "session.summary": e.payload.get("version"),
                }.get(e.topic, e.payload.get("state"))
                out.append((e.topic, e.session_id, key))

        with trio.fail_after(30):
            await other.register(engine.SessionRecord(id="b", name="b", state="active"))
            await log.append([_note("b", n) for n in (1, 2, 3)])
            await relay.handle(engine.ChangeNotice(K.SESSION, "b", owner="other"))
            await relay.handle(engine.ChangeNotice(K.WORKLOG, "b", 2, 3, owner="other"))
            await relay.handle(engine.ChangeNotice(K.WORKLOG, "b", 2, 3, owner="other"))  # again
            assert published() == [
                ("session.state", "b", "active"),
                ("session.worklog", "b", 2),
                ("session.worklog", "b", 3),
            ]

            # A summary of another daemon's session: its version, read from the store.
            await log.save_summary(engine.Summary("b", 1, metadata={"last_seq": 3}))
            await relay.handle(engine.ChangeNotice(K.SUMMARY, "b", owner="other", version=1))
            await relay.handle(engine.ChangeNotice(K.SUMMARY, "b", owner="other", version=1))
            assert published() == [("session.summary", "b", 1)]  # once

            # Notices lost in a break: the resync publishes what was missed, from the store.
            await log.append([_note("b", n) for n in (4, 5)])
            await log.save_summary(engine.Summary("b", 2, metadata={"last_seq": 5}))
            await other.register(engine.SessionRecord(id="c", name="c", state="active"))
            await log.append([_note("c", 1)])
            await relay.handle(engine.ChangeNotice(K.RESYNC, since=time.time() - 60))
            got = published()
            assert [g for g in got if g[1] == "b"] == [
                ("session.state", "b", "active"),
                ("session.summary", "b", 2),
                ("session.worklog", "b", 4),
                ("session.worklog", "b", 5),
            ]
            assert [g for g in got if g[1] == "c"] == [
                ("session.state", "c", "active"),
                ("session.worklog", "c", 1),
            ]

            # This daemon's own sessions, and the ones it captures, are its captures' to publish.
            await mine.register(engine.SessionRecord(id="m", name="m", state="active"))
            await relay.handle(engine.ChangeNotice(K.SESSION, "m", owner="me"))
            captured.append("b")
            await log.append([_note("b", 6)])
            await relay.handle(engine.ChangeNotice(K.WORKLOG, "b", 6, 6, owner="other"))
            await log.save_summary(engine.Summary("b", 3, metadata={"last_seq": 6}))
            await relay.handle(engine.ChangeNotice(K.SUMMARY, "b", owner="other", version=3))
            assert published() == []
