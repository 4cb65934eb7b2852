"""Feed parts without sockets: health monitor, rate limit, connection limit, topics, schema."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio
import trio.testing

import adapters
import engine
from adapters.feed._limits import ConnectionLimiter, TokenBucket
from adapters.feed._protocol import Command, Subscribe, decode_client_message


async def test_health_monitor_publishes_and_sees_a_saturated_gate(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    config = engine.EngineConfig(home=tmp_path, gates={"git": 1})
    async with engine.open_engine(config) as eng:
        gate = eng.gate("git")
        async with eng.open_subscription(["health", "metrics"]) as sub:
            monitor = engine.HealthMonitor(saturated_samples=3)
            eng.start_service(
                lambda: engine.run_health_monitor(eng, 1.0, monitor=monitor), name="health"
            )
            first = await sub.receive()
            assert first.topic == "health" and first.payload["status"] == "ok"
            metrics = await sub.receive()
            assert metrics.topic == "metrics" and "git" in metrics.payload["gates"]
            async with trio.open_nursery() as nursery:
                async with gate.acquire():
                    nursery.start_soon(_wait_for_slot, gate)
                    await trio.testing.wait_all_tasks_blocked()
                    statuses = []
                    while len(statuses) < 4:
                        event = await sub.receive()
                        if event.topic == "health":
                            statuses.append(event.payload["status"])
                    # Degraded once the gate was saturated for 3 samples in a row.
                    assert statuses[-1] == "degraded"
                    assert statuses[0] == "ok"
                    assert any("gate git" in p for p in event.payload["problems"])
            while True:
                event = await sub.receive()
                if event.topic == "health":
                    break
            assert event.payload["status"] == "ok"


async def _wait_for_slot(gate: engine.PriorityLimiter) -> None:
    async with gate.acquire():
        pass


def test_health_monitor_judges_loop_lag_and_rates() -> None:
    stats = engine.EngineStatistics(
        state="running",
        sessions_by_state={"active": 2, "failed": 1},
        live_sessions=2,
        sessions_started=3,
        gates={},
        events_published=100,
        subscribers=1,
        service_errors={},
        uptime=1.0,
    )
    monitor = engine.HealthMonitor(max_loop_lag=0.1)
    first = monitor.sample(stats, now=10.0, loop_lag=0.01)
    assert first.ok and first.metrics["events_per_second"] == 0.0
    assert first.health["sessions"] == {"total": 3, "failed": 1, "orphaned": 0}
    later = dataclasses.replace(stats, events_published=150)
    second = monitor.sample(later, now=12.0, loop_lag=0.5)
    assert not second.ok
    assert second.metrics["events_per_second"] == 25.0
    assert second.health["checks"]["loop"] == {"ok": False, "lag_ms": 500.0}


def test_token_bucket_allows_bursts_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    assert [bucket.try_take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.try_take(0.4) is False  # 0.8 tokens
    assert bucket.try_take(0.5) is True  # 1.0 token
    assert bucket.try_take(100.0) and bucket.tokens == 2.0  # refill is capped at the burst
    assert bucket.try_take(99.0) is True  # time going backwards never adds tokens
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)


def test_connection_limiter_counts_per_token() -> None:
    limiter = ConnectionLimiter(2)
    limiter.acquire("a")
    limiter.acquire("a")
    limiter.acquire("b")
    with pytest.raises(adapters.ConnectionLimitError):
        limiter.acquire("a")
    limiter.release("a")
    limiter.acquire("a")
    assert limiter.count("a") == 2 and limiter.count("b") == 1
    limiter.release("b")
    assert limiter.count("b") == 0


def test_topics_and_routes() -> None:
    assert engine.feed_topic_kind("sessions") is engine.TopicKind.STATE
    assert engine.feed_topic_kind("worklog:abc") is engine.TopicKind.ORDERED
    for bad in ("", "worklog:", "worklog:a b", "session", "x" * 300, "context:" + "a" * 300):
        with pytest.raises(engine.FeedTopicError):
            engine.feed_topic_kind(bad)
    assert engine.route_engine_event("session.state", {"id": "s"}, "s") == ("sessions", "s")
    assert engine.route_engine_event("session.worklog", {}, "s") == ("worklog:s", None)
    assert engine.route_engine_event("session.context", {}, "s") == ("context:s", None)
    assert engine.route_engine_event("health", {}, None) == ("health", "health")
    assert engine.route_engine_event("engine.service", {}, None) is None
    hub = engine.FeedHub()
    with pytest.raises(engine.FeedClientNotFoundError):
        hub.take(99)
    with pytest.raises(ValueError):
        engine.FeedHub(history_size=0)


def test_client_messages_are_validated() -> None:
    message = decode_client_message(
        '{"type":"subscribe","topic":"sessions","since":{"epoch":"e","offset":3}}'
    )
    assert isinstance(message, Subscribe) and message.since is not None
    assert message.since.offset == 3
    command = decode_client_message(
        b'{"type":"command","command":"cancel_session","session_id":"s","id":4}'
    )
    assert isinstance(command, Command) and command.id == 4
    for raw, code in (
        ("nope", "invalid_json"),
        ('"text"', "invalid_message"),
        (
            '{"type":"subscribe","topic":"sessions","since":{"epoch":"e","offset":-1}}',
            "invalid_message",
        ),
        ('{"type":"ping","id":1.5}', "invalid_message"),
        ('{"type":"shutdown","id":"z"}', "unknown_command"),
        ('{"topic":"sessions"}', "invalid_message"),
    ):
        with pytest.raises(adapters.FeedProtocolError) as info:
            decode_client_message(raw)
        assert info.value.code == code, raw
    schema = adapters.client_message_schema()
    assert set(schema["discriminator"]["mapping"]) == {
        "subscribe",
        "unsubscribe",
        "ping",
        "command",
    }


def test_docs_describe_every_message_type() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "feed.md").read_text()
    for kind in (
        "subscribe", "unsubscribe", "ping", "command", "welcome", "subscribed", "snapshot",
        "events", "unsubscribed", "resync", "pong", "result", "error",
    ):  # fmt: skip
        assert f"| `{kind}` |" in text, kind
