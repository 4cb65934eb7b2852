"""The metric history in the wired stack: sampled every second, minutes kept in PostgreSQL, ranges
served on the dashboard's ``/history.json`` to a signed-in page only."""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path

import trio
import trio.testing
from test_dashboard import http_get, sign_in

import engine
from engine.app import AppConfig, open_stack


async def test_history_json_serves_the_ring_and_the_stored_minutes(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    config = AppConfig(
        home=tmp_path / "home", database_url=fresh_pg_url, feed_port=0, dashboard_port=0
    )
    with trio.fail_after(60):
        async with open_stack(config) as stack:
            assert stack.dashboard is not None and stack.history is not None
            base = stack.dashboard.url + "history.json"

            async def get(query: str, cookie: str | None) -> tuple[int, dict[str, object]]:
                status, _, body = await trio.to_thread.run_sync(http_get, f"{base}?{query}", cookie)
                return status, json.loads(body)

            await trio.testing.wait_all_tasks_blocked()  # the first sample is taken at once
            assert stack.history.statistics().samples >= 1
            status, body = await get("series=gate.db.capacity", None)
            assert status == 401 and body["error"] == "unauthorized"
            cookie = await trio.to_thread.run_sync(sign_in, stack.dashboard.login_url())
            status, body = await get("", cookie)
            names = body["series_names"]
            assert isinstance(names, list)
            assert {"gate.db.capacity", "db.connections", "feed.clients"} <= set(names)
            status, body = await get("series=gate.db.capacity,sessions.live&last=60", cookie)
            assert status == 200 and body["source"] == "ring" and body["step"] == 1.0
            series = body["series"]
            assert isinstance(series, dict)
            assert {p[1] for p in series["gate.db.capacity"]} == {config.pool_size}
            # an hour ago is older than the ring: the minutes come from the database
            an_hour_ago = time.time() - 3600
            minute = an_hour_ago - an_hour_ago % 60
            assert stack.history.store is not None
            await stack.history.store.put_minutes(
                [engine.MinuteRollup(minute, {"gate.db.use": (0.5, 1.0)}, 60)]
            )
            query = urllib.parse.urlencode(
                {"series": "gate.db.use", "since": an_hour_ago - 120, "points": 100}
            )
            status, body = await get(query, cookie)
            assert status == 200 and body["source"] == "store" and body["step"] == 60.0
            series = body["series"]
            assert isinstance(series, dict)
            assert series["gate.db.use"][0] == [minute, 0.5, 1.0]
            for bad in (
                "series=a%20b",
                "series=x&last=0",
                "series=x&last=abc",
                "series=x&last=nan",
                "series=x&last=9999999999",
                "series=x&points=0",
                "series=x&last=60&since=1",
                "series=" + ",".join(f"s{i}" for i in range(65)),
                "series=" + "x" * 9000,
            ):
                status, body = await get(bad, cookie)
                assert status == 400 and body["error"] == "bad_request", bad
