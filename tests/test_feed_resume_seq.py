"""A feed client resumes a worklog by entry seq across epochs: subscribing to ``worklog:<id>`` of a
daemon whose epoch is not the one it knows (the daemon restarted, or the client comes from another
daemon of the same database), with the seq of the last entry it has, gets exactly the entries after
it, read from the database, then live ones. A real stack on PostgreSQL, a real websocket client."""

from __future__ import annotations

import time
from pathlib import Path

import trio

import adapters
import engine
from engine.app import AppConfig, open_stack


def _note(sid: str, seq: int) -> engine.WorklogEntry:
    return engine.WorklogEntry(sid, seq, engine.EntryKind.NOTE, time.time(), {"text": f"n{seq}"})


async def _next_snapshot(client: adapters.FeedClient) -> adapters.FeedSnapshot:
    while True:
        message = await client.receive()
        if isinstance(message, adapters.FeedSnapshot):
            return message


async def test_a_worklog_is_resumed_by_seq_from_another_epoch(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    config = AppConfig(
        home=tmp_path / "home", database_url=fresh_pg_url, feed_port=0, dashboard=False
    )
    with trio.fail_after(60):
        async with open_stack(config) as stack:
            assert stack.feed is not None and stack.token is not None
            # Another daemon's session and entries, in the shared database.
            async with adapters.open_session_registry(stack.db, owner_id="other", lease=60) as reg:
                await reg.register(engine.SessionRecord(id="b", name="b", state="active"))
                log = adapters.PostgresWorklogStore(stack.db, reg.lease)
                await log.append([_note("b", n) for n in range(1, 8)])
                # The client had entries up to seq 3 in an epoch of elsewhere.
                elsewhere = {"worklog:b": engine.FeedPosition("elsewhere", 40, seq=3)}
                async with adapters.open_feed_client(
                    stack.feed.url, stack.token, resume=elsewhere
                ) as client:
                    await client.subscribe("worklog:b")
                    snap = await _next_snapshot(client)
                    assert snap.after_seq == 3 and not snap.truncated
                    assert [e.data["seq"] for e in snap.events] == [4, 5, 6, 7]
                    assert snap.events[0].data["payload"]["text"] == "n4"
                    position = client.position("worklog:b")
                    assert position is not None and position.seq == 7
                    assert position.epoch == stack.feed.epoch
                    # Without the seq, another epoch gets the usual snapshot (the ring's: empty).
                    await client.subscribe("worklog:b", since=engine.FeedPosition("elsewhere", 40))
                    plain = await _next_snapshot(client)
                    assert plain.after_seq is None and plain.events == ()
                # A bad seq is refused as bad input, and the connection goes on.
                async with adapters.open_feed_client(stack.feed.url, stack.token) as client:
                    await client.send_raw(
                        '{"type": "subscribe", "topic": "worklog:b", '
                        '"since": {"epoch": "x", "offset": 0, "seq": -1}}'
                    )
                    while True:
                        reply = await client.receive()
                        if isinstance(reply, adapters.FeedReply) and reply.type == "error":
                            break
                    await client.subscribe("worklog:b", since=engine.FeedPosition("x", 0, seq=6))
                    again = await _next_snapshot(client)
                    assert [e.data["seq"] for e in again.events] == [7]
