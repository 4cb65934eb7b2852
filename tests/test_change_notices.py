"""Change notices over PostgreSQL: what the triggers send, what the listener makes of it, and its
reconnection (a resync notice first) after its connection is killed on the server."""

from __future__ import annotations

import time

import trio

import adapters
import engine

K = engine.NoticeKind


async def test_notices_name_rows_and_resume_with_a_resync_after_a_break(fresh_pg_url: str) -> None:
    async with (
        adapters.open_database(fresh_pg_url, pool_size=2) as db,
        adapters.open_session_registry(db, owner_id="writer", lease=60) as reg,
        adapters.open_change_listener(fresh_pg_url, retry_max=0.2) as notices,
    ):
        log = adapters.PostgresWorklogStore(db, reg.lease)
        with trio.fail_after(30):
            await reg.register(engine.SessionRecord(id="s 1", name="s", state="active"))
            entries = [
                engine.WorklogEntry(
                    "s 1", n, engine.EntryKind.NOTE, time.time(), {"text": "x" * 9000}
                )
                for n in (1, 2, 3)
            ]
            await log.append(entries)
            await reg.touch("s 1")  # activity alone is not a change
            await reg.add_tags("s 1", ["t"])
            got = [await notices.receive() for _ in range(3)]
            assert got == [
                engine.ChangeNotice(K.SESSION, "s 1", owner="writer"),
                engine.ChangeNotice(K.WORKLOG, "s 1", 1, 3, owner="writer"),
                engine.ChangeNotice(K.SESSION, "s 1", owner="writer"),
            ]

            # The server drops the listener's connection: it comes back, says so, and goes on.
            before = time.time()
            await db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'scribe-listen' AND datname = current_database()"
            )
            resync = await notices.receive()
            assert resync.kind is K.RESYNC and before - 1 <= resync.since <= time.time()
            await log.append(
                [engine.WorklogEntry("s 1", 4, engine.EntryKind.NOTE, time.time(), {})]
            )
            assert await notices.receive() == engine.ChangeNotice(
                K.WORKLOG, "s 1", 4, 4, owner="writer"
            )
            # A stored summary is named by its version, not carried.
            await log.save_summary(engine.Summary("s 1", 1, key_ideas=("y" * 9000,)))
            assert await notices.receive() == engine.ChangeNotice(
                K.SUMMARY, "s 1", owner="writer", version=1
            )


def test_payloads_that_are_not_ours_are_ignored() -> None:
    parse = adapters.parse_change_notice
    assert parse("scribe_worklog", '{"s": "a", "o": null, "f": 2, "l": 5}') == engine.ChangeNotice(
        K.WORKLOG, "a", 2, 5
    )
    assert parse("scribe_summaries", '{"s": "a", "o": "x", "v": 3}') == engine.ChangeNotice(
        K.SUMMARY, "a", owner="x", version=3
    )
    for channel, payload in [
        ("scribe_summaries", '{"s": "a", "v": "3"}'),
        ("scribe_summaries", '{"s": "a", "v": true}'),
        ("scribe_sessions", "not json"),
        ("scribe_sessions", "[1]"),
        ("scribe_sessions", '{"s": 5}'),
        ("scribe_worklog", '{"s": "a", "f": "1", "l": 2}'),
        ("elsewhere", '{"s": "a"}'),
    ]:
        assert parse(channel, payload) is None, (channel, payload)
