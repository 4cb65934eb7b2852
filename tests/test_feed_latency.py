"""When the feed sends: an idle client at once, one event per frame; a backlog in joined frames.

The decision is the hub's (:meth:`engine.FeedHub.take` frames what waits); the connection sends it
as soon as the client's queue stops being empty, never waiting for more.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
import trio.testing
from feed_support import SECRET, open_feed, wait_until
from trio_websocket import (
    WebSocketConnection,
    open_websocket_url,
    wrap_client_stream,
    wrap_server_stream,
)

import adapters
import engine
from adapters.feed._connection import FeedConnection
from adapters.feed._server_config import ConnectionCounters

TOPIC = "worklog:s"


def offsets(frame: dict[str, Any]) -> list[int]:
    assert frame["type"] == "events", frame
    return [e["offset"] for e in frame["events"]]


def test_hub_wakes_an_idle_client_once_and_frames_what_waits() -> None:
    woken: list[int] = []
    hub = engine.FeedHub(max_frame_events=4)
    cid = hub.add_client(on_ready=lambda: woken.append(1))
    hub.subscribe(cid, TOPIC)
    while hub.take(cid) is not None:
        pass
    woken.clear()
    # Idle: the first event wakes the client and is a frame of its own.
    hub.publish(TOPIC, {"i": 1})
    assert woken == [1]
    frame = hub.take(cid)
    assert frame is not None and offsets(json.loads(frame)) == [1]
    assert hub.take(cid) is None
    # A backlog: one wake, and what waits goes in frames of up to max_frame_events, in order.
    for i in range(2, 12):
        hub.publish(TOPIC, {"i": i})
    assert woken == [1, 1]
    frames = []
    while (raw := hub.take(cid)) is not None:
        frames.append(offsets(json.loads(raw)))
    assert frames == [[2, 3, 4, 5], [6, 7, 8, 9], [10, 11]]


@asynccontextmanager
async def connection_pair(
    eng: engine.Engine, hub: engine.FeedHub, pair: tuple[trio.abc.Stream, trio.abc.Stream]
) -> AsyncIterator[tuple[FeedConnection, WebSocketConnection]]:
    """A FeedConnection (no socket: its sender task sends everything) and a websocket client
    subscribed to TOPIC, over in-memory streams."""
    server_stream, client_stream = pair
    token = adapters.make_token(SECRET, adapters.FeedScopes.read_all(), 600)
    claims = adapters.verify_token(SECRET, token)
    async with trio.open_nursery() as nursery:
        accepted: list[FeedConnection] = []

        async def serve() -> None:
            request = await wrap_server_stream(nursery, server_stream)
            ws = await request.accept()
            conn = FeedConnection(
                ws,
                claims,
                eng=eng,
                hub=hub,
                config=adapters.FeedServerConfig(),
                counters=ConnectionCounters(),
            )
            accepted.append(conn)
            await conn.run()

        nursery.start_soon(serve)
        client = await wrap_client_stream(nursery, client_stream, "localhost", "/feed")
        assert json.loads(await client.get_message())["type"] == "welcome"
        await client.send_message(json.dumps({"type": "subscribe", "topic": TOPIC}))
        assert json.loads(await client.get_message())["type"] == "subscribed"
        assert json.loads(await client.get_message())["type"] == "snapshot"
        yield accepted[0], client
        nursery.cancel_scope.cancel()


async def test_an_idle_client_gets_each_event_with_no_added_delay(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    hub = engine.FeedHub()
    async with (
        engine.open_engine(engine.EngineConfig(home=tmp_path)) as eng,
        connection_pair(eng, hub, trio.testing.memory_stream_pair()) as (conn, client),
    ):
        assert not conn.direct
        for i in range(1, 6):
            published_at = trio.current_time()
            hub.publish(TOPIC, {"i": i})
            frame = json.loads(await client.get_message())
            # The clock jumps as soon as a task sleeps: it did not move, so nothing waited.
            assert trio.current_time() == published_at
            assert offsets(frame) == [i]
        # Several waiting when the sender wakes: one frame, still at once.
        published_at = trio.current_time()
        for i in range(6, 9):
            hub.publish(TOPIC, {"i": i})
        assert offsets(json.loads(await client.get_message())) == [6, 7, 8]
        assert trio.current_time() == published_at


async def test_events_published_during_a_send_go_together_in_order(tmp_path: Path) -> None:
    with trio.fail_after(20):
        hub = engine.FeedHub()
        pair = trio.testing.lockstep_stream_pair()  # a send lasts until the client reads
        async with (
            engine.open_engine(engine.EngineConfig(home=tmp_path)) as eng,
            connection_pair(eng, hub, pair) as (conn, client),
        ):
            n = 0
            # The client reads nothing for now: its library's reader takes a message or two,
            # then the server's send blocks.
            while conn.sending_since == math.inf:
                n += 1
                hub.publish(TOPIC, {"i": n})
                await trio.sleep(0.01)
            blocked_at = n
            for _ in range(20):
                n += 1
                hub.publish(TOPIC, {"i": n})
            got: list[list[int]] = []
            while sum(map(len, got)) < n:
                got.append(offsets(json.loads(await client.get_message())))
            assert [o for frame in got for o in frame] == list(range(1, n + 1))
            # What was published while the send was blocked went in one frame.
            assert got[-1] == list(range(blocked_at + 1, n + 1))


async def test_idle_clients_get_direct_writes_and_a_backlog_resumes_in_order(
    tmp_path: Path,
) -> None:
    with trio.fail_after(60):
        async with open_feed(tmp_path, client_queue_size=5000, history_size=5000) as feed:
            url = feed.url(feed.token())
            async with open_websocket_url(url, message_queue_size=1) as client:
                assert json.loads(await client.get_message())["type"] == "welcome"
                await client.send_message(json.dumps({"type": "subscribe", "topic": TOPIC}))
                assert json.loads(await client.get_message())["type"] == "subscribed"
                assert json.loads(await client.get_message())["type"] == "snapshot"
                before = feed.server.statistics().direct_frames
                assert before >= 2, (
                    "frames are no longer written straight to the socket: has trio-websocket's "
                    "WebSocketConnection lost _stream or _stream_lock?"
                )
                # Idle: one event, one frame, written by the flush.
                for i in range(1, 11):
                    feed.eng.publish_nowait("session.worklog", {"i": i}, session_id="s")
                    assert offsets(json.loads(await client.get_message())) == [i]
                assert feed.server.statistics().direct_frames == before + 10
                # One pump batch: one frame.
                for i in range(11, 31):
                    feed.eng.publish_nowait("session.worklog", {"i": i}, session_id="s")
                assert offsets(json.loads(await client.get_message())) == list(range(11, 31))
                # The client stops reading: the socket fills, a frame's tail is left to the
                # sender task, and everything still arrives once, in order.
                n = 30
                while feed.server.statistics().carried_frames == 0:
                    n += 1
                    pad = "p" * 20_000
                    feed.eng.publish_nowait("session.worklog", {"i": n, "pad": pad}, session_id="s")
                    await trio.sleep(0.001)
                for _ in range(50):
                    n += 1
                    feed.eng.publish_nowait("session.worklog", {"i": n}, session_id="s")
                got: list[int] = []
                while len(got) < n - 30:
                    got.extend(offsets(json.loads(await client.get_message())))
                assert got == list(range(31, n + 1))
                # Idle again: straight to the socket.
                clients = feed.server._clients.values()
                await wait_until(lambda: all(c.sending_since == math.inf for c in clients))
                direct = feed.server.statistics().direct_frames
                feed.eng.publish_nowait("session.worklog", {"i": n + 1}, session_id="s")
                assert offsets(json.loads(await client.get_message())) == [n + 1]
                assert feed.server.statistics().direct_frames == direct + 1
                assert feed.server.statistics().closed_slow == 0
