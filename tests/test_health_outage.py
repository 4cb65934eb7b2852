"""Health during a database outage: the probe's judgement on trio's clock, the health payload, and the
dashboard's ``/health`` of the real stack while the embedded server is stopped (``database: down``,
``degraded`` while capture carries entries) and after it is back."""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from git_repos import GIT_ENV, make_repo
from pg_support import start_test_server
from scribe_support import poll_until
from webhook_support import Receiver

import adapters
import engine
from engine.app import AppConfig, open_stack


class Dependency:
    """A check that answers, fails or hangs as the test says."""

    def __init__(self) -> None:
        self.mode = "up"

    async def check(self) -> None:
        if self.mode == "hang":
            await trio.sleep_forever()
        await trio.lowlevel.checkpoint()
        if self.mode == "down":
            raise engine.ScribeError("connection refused")


async def test_a_probe_says_down_within_one_interval_and_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    dep = Dependency()
    changes: list[tuple[str, str | None]] = []
    changed = trio.Event()

    def on_change(state: str, error: str | None) -> None:
        nonlocal changed
        changes.append((state, error))
        changed.set()
        changed = trio.Event()

    async def next_change() -> None:
        await changed.wait()

    probe = engine.Probe("database", dep.check, interval=0.5, timeout=0.5, on_change=on_change)
    assert probe.state == "unknown"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(probe.run)
        await trio.sleep(0.1)
        assert probe.state == "up" and probe.health().ok
        for mode in ("down", "hang"):
            dep.mode = "up"
            await trio.sleep(1.0)
            assert probe.state == "up"
            dep.mode = mode
            went = trio.current_time()
            await next_change()
            # MockClock time: at most one interval until the next check, plus its timeout
            assert trio.current_time() - went <= 1.0 + 0.02
            check = probe.health()
            assert not check.ok and check.status == "down" and check.problem == "database down"
        dep.mode = "up"
        await next_change()
        nursery.cancel_scope.cancel()
    assert [s for s, _ in changes] == ["up", "down", "up", "down", "up"]
    assert changes[1][1] == "ScribeError: connection refused"
    assert changes[3][1] == "no answer within 0.5 s"


def test_health_shows_each_part_and_degrades_on_one() -> None:
    class Stats:
        def __init__(self) -> None:
            self.sessions_by_state: dict[str, int] = {}
            self.gates: dict[str, Any] = {}
            self.events_published = 0
            self.subscribers = 0

    monitor = engine.HealthMonitor()
    down = engine.HealthCheck(ok=False, status="down", problem="database down")
    carrying = engine.HealthCheck(ok=False, status="carrying", detail={"carried": 3})
    sample = monitor.sample(Stats(), now=1.0, checks={"database": down, "capture": carrying})
    h = sample.health
    assert h["status"] == "degraded" and not sample.ok
    assert h["database"] == "down" and h["capture"] == "carrying"
    assert h["checks"]["capture"] == {"ok": False, "status": "carrying", "carried": 3}
    assert "database: database down" in h["problems"]
    ok = monitor.sample(Stats(), now=2.0, checks={"database": engine.HealthCheck(True, "up")})
    assert ok.ok and ok.health["database"] == "up"


def http_health(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url + "health", timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            body = exc.read()
    result: dict[str, Any] = json.loads(body)
    return result


@pytest.fixture
def server(pg_tmp_path: Path) -> Iterator[adapters.EmbeddedServer]:
    srv = start_test_server(pg_tmp_path)
    try:
        srv.create_database("scribe")
        yield srv
    finally:
        srv.stop("fast")


async def test_health_says_database_down_and_degraded_while_carrying(
    server: adapters.EmbeddedServer, receiver: Receiver, tmp_path: Path
) -> None:
    """And the alerts ``database_down`` and ``backlog`` fire and resolve: on ``/health``, on the
    feed's ``health`` topic and at the webhook (which refuses its first post: it is retried)."""
    repo = make_repo(tmp_path / "work", files={"a.py": "a\n"})
    cfg = engine.ScribeConfig(
        watcher_options={"quiet": 0.01, "cap": 0.1, "reconcile_interval": None}
    )
    with tempfile.TemporaryDirectory(prefix="scribe-home-") as home:
        app = AppConfig(
            home=Path(home),
            database_url=server.url("scribe"),
            feed_port=0,
            dashboard_port=0,
            shutdown_grace=2.0,
            health_interval=0.5,  # the alerts are judged as often
            alert_for_seconds=0.5,
            alert_backlog_entries=1,
            alert_disk_percent=100.0,  # not this test's fault
            alert_loop_lag_ms=60_000.0,  # nor this one (a loaded machine lags)
            alert_webhook_url=receiver.url,
        )
        async with (
            open_stack(app, scribe_config=cfg, git_env=GIT_ENV) as s,
            s.engine.open_subscription(["health.alert"]) as alerts,
        ):
            assert s.dashboard is not None
            url = s.dashboard.url
            rec = await s.scribe.start(repo)
            health: dict[str, Any] = {}

            async def health_is(pred: Any) -> None:
                async def fetch() -> bool:
                    health.clear()
                    health.update(await trio.to_thread.run_sync(http_health, url))
                    return bool(pred(health))

                with trio.fail_after(60):  # a guard against hanging, not a latency bound
                    while not await fetch():  # noqa: ASYNC110 - the state is behind HTTP
                        await trio.sleep(0.05)

            await health_is(lambda h: h["database"] == "up" and h["capture"] == "ok")
            assert health["status"] == "ok"
            await trio.to_thread.run_sync(server.stop, "immediate")
            await health_is(lambda h: h["database"] == "down")
            assert (
                health["status"] == "degraded" and "database: database down" in health["problems"]
            )
            await health_is(lambda h: h["alerts"] == "firing")
            firing = health["checks"]["alerts"]["firing"]
            assert [a["name"] for a in firing] == ["database_down"]
            assert firing[0]["message"] == "the database does not answer"
            (repo / "while_down.py").write_text("x\n")
            await health_is(lambda h: h["capture"] == "carrying")
            assert health["checks"]["capture"]["carried"] >= 1 and health["status"] == "degraded"
            assert "pgdata" not in json.dumps(health)  # no paths in /health
            await health_is(lambda h: len(h["checks"]["alerts"]["firing"]) == 2)
            backlog = health["checks"]["alerts"]["firing"][0]
            assert backlog["name"] == "backlog" and backlog["threshold"] == 1
            await trio.to_thread.run_sync(server.start)
            await health_is(
                lambda h: h["database"] == "up" and h["capture"] == "ok" and h["alerts"] == "ok"
            )
            assert health["status"] == "ok"
            changes = [await alerts.receive() for _ in range(4)]
            assert sorted((e.payload["name"], e.payload["state"]) for e in changes) == [
                ("backlog", "firing"),
                ("backlog", "resolved"),
                ("database_down", "firing"),
                ("database_down", "resolved"),
            ]
            assert changes[0].payload == {**changes[0].payload, "name": "database_down"}

            def delivered() -> bool:
                return len(receiver.posts) == 4  # the first refused once, then sent again

            await poll_until(delivered, timeout=30)
            assert receiver.states() == [(e.payload["name"], e.payload["state"]) for e in changes]
            assert receiver.posts[0]["source"] == "scribe"

            def stored() -> bool:
                info = s.scribe.capture_info(rec.id)
                return info is not None and info.carried == 0

            await poll_until(stored, timeout=30)
