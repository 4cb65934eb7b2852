"""The feed server with real websocket connections: auth, delivery, resume, bad input, slow clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from feed_support import SECRET, handshake_status, open_feed, raw_handshake, wait_until
from trio_websocket import open_websocket_url

import adapters
import engine
from adapters import FeedReply, FeedSnapshot, FeedUpdate, open_feed_client


async def next_of(client: adapters.FeedClient, kind: type[Any], **match: Any) -> Any:
    """The next message of a type (and reply type / fields), skipping others."""
    while True:
        message = await client.receive()
        if not isinstance(message, kind):
            continue
        if isinstance(message, FeedReply):
            if all(message.data.get(k) == v for k, v in match.items()):
                return message
            continue
        if all(getattr(message, k) == v for k, v in match.items()):
            return message


async def updates(client: adapters.FeedClient, topic: str, n: int) -> list[FeedUpdate]:
    out: list[FeedUpdate] = []
    while len(out) < n:
        message = await client.receive()
        if isinstance(message, FeedUpdate) and message.topic == topic:
            out.append(message)
    return out


# ---------------------------------------------------------------------------- handshake


async def test_handshake_refuses_bad_tokens(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_feed(tmp_path) as feed:
            port = feed.server.port

            async def status(token: str | None, header: bool = False, path: str = "/feed") -> int:
                if token is None:
                    return await handshake_status(port, path)
                if header:
                    return await handshake_status(port, path, (f"Authorization: Bearer {token}",))
                return await handshake_status(port, f"{path}?token={token}")

            assert await status(None) == 401
            forged = adapters.make_token("another-secret-" + "y" * 32, adapters.FeedScopes(), 60)
            assert await status(forged) == 401
            good = feed.token()
            tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
            assert await status(tampered, header=True) == 401
            expired = adapters.make_token(SECRET, adapters.FeedScopes(), 60, now=1_000_000)
            assert await status(expired) == 401
            assert await status("not.a.token") == 401
            nothing = adapters.make_token(SECRET, adapters.FeedScopes(frozenset()), 60)
            assert await status(nothing) == 403
            assert await status(good, path="/other") == 404
            with pytest.raises(adapters.FeedConnectionError) as info:
                async with open_feed_client(feed.server.url, expired):
                    pass  # pragma: no cover
            assert info.value.status == 401
            assert "token_expired" in str(info.value)
            # The server still serves good tokens, in the header or the query.
            assert await status(good, header=True) == 101
            assert await status(good) == 101
            async with open_feed_client(feed.server.url, good) as client:
                assert client.epoch == feed.server.epoch
            async with open_websocket_url(feed.url(good)) as ws:
                assert '"welcome"' in str(await ws.get_message())
            assert feed.server.statistics().rejected == 8


async def test_connection_limit_per_token(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_feed(tmp_path, max_connections_per_token=2) as feed:
            token = feed.token(token_id="shared")
            async with (
                open_feed_client(feed.server.url, token),
                open_feed_client(feed.server.url, token),
            ):
                with pytest.raises(adapters.FeedConnectionError) as info:
                    async with open_feed_client(feed.server.url, token):
                        pass  # pragma: no cover
                assert info.value.status == 429
                # Another token is not affected.
                async with open_feed_client(feed.server.url, feed.token(token_id="other")):
                    pass
            # Closing frees the slots.
            await wait_until(lambda: feed.server.statistics().clients == 0)
            async with open_feed_client(feed.server.url, token):
                pass


async def test_token_expiry_closes_the_connection(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_feed(tmp_path) as feed:
            async with open_feed_client(feed.server.url, feed.token(ttl=2.0)) as client:
                with pytest.raises(adapters.FeedConnectionError) as info:
                    while True:
                        await client.receive()
                assert info.value.code == 4001


# ---------------------------------------------------------------------------- delivery


async def test_status_worklog_and_resume(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_feed(tmp_path) as feed:
            eng = feed.eng
            session = await eng.start_session("alpha", priority=engine.Priority.HIGH)
            topic = f"worklog:{session.id}"
            async with open_feed_client(feed.server.url, feed.token()) as client:
                await client.subscribe("sessions")
                snapshot = await next_of(client, FeedSnapshot, topic="sessions")
                assert [e.data["name"] for e in snapshot.events] == ["alpha"]
                assert snapshot.events[0].data["priority"] == "high"
                await client.subscribe(topic)
                await next_of(client, FeedSnapshot, topic=topic)
                for i in range(5):
                    eng.publish_nowait("session.worklog", {"i": i}, session_id=session.id)
                got = await updates(client, topic, 5)
                assert [u.data["i"] for u in got] == [0, 1, 2, 3, 4]
                assert [u.offset for u in got] == [1, 2, 3, 4, 5]
                positions = client.positions()
            # While disconnected, more happens.
            for i in range(5, 12):
                eng.publish_nowait("session.worklog", {"i": i}, session_id=session.id)
            session.cancel()
            await session.wait()
            async with open_feed_client(feed.server.url, feed.token(), resume=positions) as client:
                await client.subscribe(topic)
                reply = await next_of(client, FeedReply, type="subscribed")
                assert reply.data["recovered"] is True
                got = await updates(client, topic, 7)
                assert [u.data["i"] for u in got] == list(range(5, 12))
                await client.subscribe("sessions")
                reply = await next_of(client, FeedReply, type="subscribed", topic="sessions")
                assert reply.data["recovered"] is True
                states = []
                while not states or states[-1] != "cancelled":
                    update = await next_of(client, FeedUpdate, topic="sessions")
                    states.append(update.data["state"])
                assert states == ["stopping", "cancelled"]
            # Resuming from another epoch or beyond the ring gives a snapshot instead.
            async with open_feed_client(feed.server.url, feed.token()) as client:
                await client.subscribe(topic, since=engine.FeedPosition("old-epoch", 3))
                reply = await next_of(client, FeedReply, type="subscribed")
                assert reply.data["recovered"] is False
                snap = await next_of(client, FeedSnapshot, topic=topic)
                assert [e.data["i"] for e in snap.events] == list(range(12))


async def test_history_overrun_gives_a_snapshot(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_feed(tmp_path, history_size=4) as feed:
            sid = "s-1"
            topic = f"context:{sid}"
            async with open_feed_client(feed.server.url, feed.token()) as client:
                await client.subscribe(topic)
                await next_of(client, FeedSnapshot, topic=topic)
                positions = client.positions()
            for i in range(10):
                feed.eng.publish_nowait("session.context", {"i": i}, session_id=sid)
            async with open_feed_client(feed.server.url, feed.token(), resume=positions) as c2:
                await c2.subscribe(topic)
                reply = await next_of(c2, FeedReply, type="subscribed")
                assert reply.data["recovered"] is False
                snap = await next_of(c2, FeedSnapshot, topic=topic)
                assert [e.data["i"] for e in snap.events] == [6, 7, 8, 9]
                assert c2.position(topic) == engine.FeedPosition(feed.server.epoch, 10)


async def test_health_and_metrics_topics(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_feed(tmp_path) as feed:
            feed.eng.start_service(engine.run_health_monitor, feed.eng, 0.05, name="health")
            async with open_feed_client(feed.server.url, feed.token()) as client:
                await client.subscribe("health")
                await client.subscribe("metrics")
                health = await next_of(client, FeedUpdate, topic="health")
                assert health.data["status"] == "ok"
                metrics = await next_of(client, FeedUpdate, topic="metrics")
                assert "sessions_by_state" in metrics.data
                assert metrics.data["subscribers"] >= 1
                alert = engine.Alert("database_down", "firing", "down", None, None, 1.0)
                feed.eng.publish_nowait("health.alert", alert.as_dict())
                update = await next_of(
                    client, FeedUpdate, topic="health", key="alert:database_down"
                )
                assert update.data == alert.as_dict()


# ---------------------------------------------------------------------------- scopes and commands


async def test_scopes_limit_topics_sessions_and_commands(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_feed(tmp_path) as feed:
            mine = await feed.eng.start_session("mine")
            theirs = await feed.eng.start_session("theirs")
            token = feed.token(topics=("sessions", "worklog"), sessions=(mine.id,))
            async with open_feed_client(feed.server.url, token) as client:
                for topic in ("health", f"worklog:{theirs.id}", f"context:{mine.id}"):
                    await client.subscribe(topic)
                    error = await next_of(client, FeedReply, type="error")
                    assert error.data["code"] == "forbidden", topic
                await client.subscribe("sessions")
                snap = await next_of(client, FeedSnapshot, topic="sessions")
                assert {e.key for e in snap.events} == {mine.id}
                await client.cancel_session(mine.id)
                error = await next_of(client, FeedReply, type="error")
                assert error.data["code"] == "forbidden"
                theirs.cancel()
                mine.touch()
                await client.ping()
                await next_of(client, FeedReply, type="pong")
                assert mine.state is engine.SessionState.ACTIVE
            control = feed.token(control=True)
            async with open_feed_client(feed.server.url, control) as client:
                await client.cancel_session("no-such-session")
                error = await next_of(client, FeedReply, type="error")
                assert error.data["code"] == "not_found"
                await client.cancel_session(mine.id)
                result = await next_of(client, FeedReply, type="result")
                assert result.data["ok"] is True
                await mine.wait()
                assert mine.state is engine.SessionState.CANCELLED


# ---------------------------------------------------------------------------- bad input


async def test_bad_input_gets_errors_and_others_are_served(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_feed(tmp_path, max_message_size=1024, command_burst=100) as feed:
            topic = "worklog:w"
            async with open_feed_client(feed.server.url, feed.token()) as watcher:
                await watcher.subscribe(topic)
                await next_of(watcher, FeedSnapshot, topic=topic)
                async with open_feed_client(feed.server.url, feed.token()) as bad:
                    cases = [
                        ("{not json", "invalid_json"),
                        ("[1, 2]", "invalid_message"),
                        ('{"type": "explode"}', "unknown_command"),
                        ('{"type": "subscribe"}', "invalid_message"),
                        (
                            '{"type": "subscribe", "topic": "sessions", "extra": 1}',
                            "invalid_message",
                        ),
                        ('{"type": "subscribe", "topic": "nope"}', "invalid_topic"),
                        ('{"type": "subscribe", "topic": "worklog:"}', "invalid_topic"),
                        ('{"type": "unsubscribe", "topic": 5, "id": 7}', "invalid_message"),
                        (
                            '{"type": "command", "command": "rm", "session_id": "x"}',
                            "invalid_message",
                        ),
                    ]
                    for raw, code in cases:
                        await bad.send_raw(raw)
                        error = await next_of(bad, FeedReply, type="error")
                        assert error.data["code"] == code, raw
                    feed.eng.publish_nowait("session.worklog", {"n": 1}, session_id="w")
                    await bad.send_raw("x" * 2000)  # over max_message_size
                    with pytest.raises(adapters.FeedConnectionError) as info:
                        while True:
                            await bad.receive()
                    assert info.value.code == 1009
                async with open_feed_client(feed.server.url, feed.token()) as binary:
                    await binary.send_raw(b"\x00\x01")
                    with pytest.raises(adapters.FeedConnectionError) as info:
                        while True:
                            await binary.receive()
                    assert info.value.code == 1003
                feed.eng.publish_nowait("session.worklog", {"n": 2}, session_id="w")
                got = await updates(watcher, topic, 2)
                assert [u.data["n"] for u in got] == [1, 2]
            stats = feed.server.statistics()
            assert stats.protocol_errors == 8  # seven bad messages and a binary frame


async def test_flood_is_rate_limited_then_closed(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_feed(
            tmp_path, command_rate=1.0, command_burst=5, max_rate_strikes=10
        ) as feed:
            async with open_feed_client(feed.server.url, feed.token()) as watcher:
                await watcher.subscribe("worklog:w")
                await next_of(watcher, FeedSnapshot, topic="worklog:w")
                async with open_feed_client(feed.server.url, feed.token()) as flood:
                    codes: list[str] = []
                    for _ in range(40):
                        try:
                            await flood.ping()
                        except adapters.FeedConnectionError:
                            break
                    with pytest.raises(adapters.FeedConnectionError) as info:
                        while True:
                            message = await flood.receive()
                            if isinstance(message, FeedReply):
                                codes.append(message.type + ":" + str(message.data.get("code")))
                    assert info.value.code == 1008
                    assert codes.count("pong:None") >= 5
                    assert "error:rate_limited" in codes
                feed.eng.publish_nowait("session.worklog", {"n": 1}, session_id="w")
                (got,) = await updates(watcher, "worklog:w", 1)
                assert got.data == {"n": 1}
            assert feed.server.statistics().closed_policy == 1


# ---------------------------------------------------------------------------- slow and dead clients


async def test_stalled_client_does_not_hold_back_others(tmp_path: Path) -> None:
    """A client that stops reading loses its ordered backlog (and is told to resync), gets only the
    newest state values, and is closed once a send stalls past the send timeout; a reading client
    meanwhile receives every worklog entry in order and the final value of every state key."""
    with trio.fail_after(60):
        async with open_feed(
            tmp_path, client_queue_size=50, send_timeout=2.0, max_frame_events=20
        ) as feed:
            worklog = "worklog:busy"
            token = feed.token()
            stalled, head = await raw_handshake(feed.server.port, f"/feed?token={token}")
            assert head.startswith(b"HTTP/1.1 101")
            async with stalled, open_feed_client(feed.server.url, token) as reader:
                # The stalled client subscribes by hand (masked client frames), then never reads.
                for topic in (worklog, "sessions"):
                    subscribe = f'{{"type":"subscribe","topic":"{topic}"}}'
                    await stalled.send_all(_client_text_frame(subscribe))
                    await reader.subscribe(topic)
                    await next_of(reader, FeedSnapshot, topic=topic)
                    await wait_until(lambda t=topic: feed.server.hub.subscriber_count(t) == 2)
                big = "b" * 64_000
                entries: list[int] = []
                states: dict[str, int] = {}
                newest: dict[str, int] = {}
                n = 2000
                for i in range(n):
                    feed.eng.publish_nowait("session.worklog", {"i": i}, session_id="busy")
                    if i % 5 == 0:
                        key = f"s{i % 10}"
                        newest[key] = i
                        feed.eng.publish_nowait("session.state", {"id": key, "i": i, "pad": big})
                    if i % 100 == 99 or i == n - 1:
                        while len(entries) < i + 1 or states != newest:
                            message = await reader.receive()
                            if isinstance(message, FeedUpdate) and message.topic == worklog:
                                entries.append(message.data["i"])
                            elif isinstance(message, FeedUpdate):
                                states[message.key or ""] = message.data["i"]
                assert entries == list(range(n))
                await wait_until(lambda: feed.server.statistics().closed_slow == 1)
                await wait_until(lambda: feed.server.statistics().clients == 1)
                stats = feed.server.statistics()
                assert stats.closed_slow == 1  # the stalled one only
                assert stats.hub.resyncs >= 1
                assert stats.hub.conflated >= 1


def _client_text_frame(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 126
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return bytes([0x81, 0x80 | len(data)]) + mask + masked


async def test_dead_client_is_detected_by_ping(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_feed(tmp_path, ping_interval=0.1, ping_timeout=0.3) as feed:
            stream, head = await raw_handshake(feed.server.port, f"/feed?token={feed.token()}")
            async with stream:
                assert head.startswith(b"HTTP/1.1 101")
                # A live client answers pings by itself and stays.
                async with open_feed_client(feed.server.url, feed.token()) as alive:
                    await wait_until(lambda: feed.server.statistics().closed_dead == 1)
                    await alive.ping()
                    await next_of(alive, FeedReply, type="pong")
                    assert feed.server.statistics().clients == 1


async def test_server_shutdown_closes_clients_with_going_away(tmp_path: Path) -> None:
    reasons: list[Any] = []
    with trio.fail_after(20):
        async with engine.open_engine(engine.EngineConfig(home=tmp_path)) as eng:
            async with trio.open_nursery() as nursery:
                async with adapters.open_feed_server(eng, secret=SECRET) as server:
                    token = adapters.make_token(SECRET, adapters.FeedScopes(), 60)
                    connected = trio.Event()

                    async def client() -> None:
                        async with open_feed_client(server.url, token) as c:
                            connected.set()
                            try:
                                while True:
                                    await c.receive()
                            except adapters.FeedConnectionError as exc:
                                reasons.append(exc.code)

                    nursery.start_soon(client)
                    await connected.wait()
    assert reasons == [1001]


def test_token_helpers_check_their_input() -> None:
    with pytest.raises(adapters.FeedTokenError):
        adapters.make_token("short", adapters.FeedScopes(), 60)
    with pytest.raises(adapters.FeedTokenError):
        adapters.make_token(SECRET, adapters.FeedScopes(), 0)
    with pytest.raises(adapters.FeedTokenError):
        adapters.FeedScopes.of(["everything"])
    token = adapters.make_token(SECRET, adapters.FeedScopes.read_all(control=True), 60)
    claims = adapters.verify_token(SECRET, token)
    assert claims.scopes.control and claims.scopes.sessions is None
    with pytest.raises(adapters.FeedTokenExpiredError):
        adapters.verify_token(SECRET, token, now=claims.expires_at + 1)
    with pytest.raises(adapters.FeedTokenInvalidError):
        adapters.verify_token("another-secret-" + "z" * 32, token)


async def test_python_client_resyncs_by_itself_without_loss(tmp_path: Path) -> None:
    """A client that falls behind is told to resync; the client library resubscribes from its
    position and, the history still holding the events, ends with every entry exactly once."""
    with trio.fail_after(30):
        async with open_feed(tmp_path, client_queue_size=20, history_size=500) as feed:
            topic = "worklog:r"
            async with open_feed_client(feed.server.url, feed.token()) as client:
                await client.subscribe(topic)
                await next_of(client, FeedSnapshot, topic=topic)
                for i in range(300):  # far more than its queue, while it reads nothing
                    feed.eng.publish_nowait("session.worklog", {"i": i}, session_id="r")
                got: list[int] = []
                kinds: list[str] = []
                while len(got) < 300:
                    message = await client.receive()
                    if isinstance(message, FeedUpdate):
                        got.append(message.data["i"])
                    elif isinstance(message, FeedReply):
                        kinds.append(message.type)
                assert got == list(range(300))
                assert "resync" in kinds
                assert feed.server.statistics().hub.resyncs >= 1


async def test_events_the_feed_cannot_carry_are_skipped(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with open_feed(tmp_path) as feed:
            async with open_feed_client(feed.server.url, feed.token()) as client:
                await client.subscribe("worklog:ok")
                await next_of(client, FeedSnapshot, topic="worklog:ok")
                eng = feed.eng
                eng.publish_nowait("session.worklog", {"n": 1}, session_id="not a topic id")
                eng.publish_nowait("session.worklog", {"n": 2**70}, session_id="ok")
                eng.publish_nowait("session.worklog", {"n": 3}, session_id="ok")
                (update,) = await updates(client, "worklog:ok", 1)
                assert update.data == {"n": 3} and update.offset == 1
                assert feed.server.statistics().skipped_events == 2


async def test_broken_peers_do_not_disturb_the_server(tmp_path: Path) -> None:
    """Garbage instead of a handshake, a plain HTTP request, an unmasked (invalid) client frame and
    a peer that vanishes mid-handshake each end only their own connection."""
    with trio.fail_after(30):
        async with open_feed(tmp_path, handshake_timeout=0.5) as feed:
            port = feed.server.port
            async with open_feed_client(feed.server.url, feed.token()) as watcher:
                await watcher.subscribe("worklog:g")
                await next_of(watcher, FeedSnapshot, topic="worklog:g")
                garbage = await trio.open_tcp_stream("127.0.0.1", port)
                async with garbage:
                    await garbage.send_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 50)
                    while await garbage.receive_some(4096):  # the server ends it
                        pass
                plain = await trio.open_tcp_stream("127.0.0.1", port)
                async with plain:
                    await plain.send_all(b"GET /feed HTTP/1.1\r\nHost: x\r\n\r\n")
                    while await plain.receive_some(4096):
                        pass
                stream, head = await raw_handshake(port, f"/feed?token={feed.token()}")
                async with stream:
                    assert head.startswith(b"HTTP/1.1 101")
                    await stream.send_all(b"\x81\x05hello")  # a client frame must be masked
                    while await stream.receive_some(4096):
                        pass
                half = await trio.open_tcp_stream("127.0.0.1", port)
                await half.send_all(b"GET /feed HTTP/1.1\r\nUpgrade: websocket\r\n")
                await half.aclose()
                silent = await trio.open_tcp_stream("127.0.0.1", port)
                async with silent:
                    assert await silent.receive_some(4096) == b""  # dropped after the timeout
                feed.eng.publish_nowait("session.worklog", {"n": 1}, session_id="g")
                (update,) = await updates(watcher, "worklog:g", 1)
                assert update.data == {"n": 1}
            await wait_until(lambda: feed.server.statistics().clients == 0)
            assert feed.server.statistics().handler_errors == 0
