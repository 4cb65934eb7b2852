"""The composition root: open_stack wires what the daemon runs, from one configuration."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import trio

import adapters
import engine
import engine.app
from engine.app import AppConfig, open_stack


async def test_the_full_stack_serves_feed_and_dashboard(pg_url: str, tmp_path: Path) -> None:
    config = AppConfig(home=tmp_path / "home", database_url=pg_url, feed_port=0, dashboard_port=0)
    with trio.fail_after(60):
        async with open_stack(config) as stack:
            assert stack.feed is not None and stack.feed.url.startswith("ws://127.0.0.1:")
            assert stack.dashboard is not None and stack.dashboard.url.startswith("http://")
            assert stack.token is not None
            claims = adapters.verify_token(
                (tmp_path / "home" / "feed.secret").read_text().strip(), stack.token
            )
            assert claims.subject == "scribe" and not claims.scopes.control
            secret_mode = stat.S_IMODE((tmp_path / "home" / "feed.secret").stat().st_mode)
            assert secret_mode == 0o600
            assert stack.scribe.engine is stack.engine
            assert stack.scribe.pipeline is stack.pipeline
            assert stack.scribe.context is stack.context
            assert stack.engine.gate("db").statistics().capacity == config.pool_size
            assert await stack.db.fetchval("SELECT 1") == 1
            assert stack.engine.statistics().state == "running"
        assert stack.engine.statistics().state == "closed"


async def test_without_the_scribe_only_the_database_parts_open(pg_url: str, tmp_path: Path) -> None:
    config = AppConfig(home=tmp_path, database_url=pg_url, feed=False)
    async with open_stack(config, scribe=False) as stack:
        assert stack.feed is None and stack.dashboard is None and stack.token is None
        assert {s.name for s in stack.memory_sources} >= {"messages", "decisions", "facts"}
        stored = await stack.memory.add_messages(
            "stack-test", [engine.NewMessage(role="user", content="hello")]
        )
        assert stored[0].seq >= 1
        with pytest.raises(engine.InvalidArgumentError, match="without the scribe"):
            _ = stack.scribe
        with pytest.raises(engine.InvalidArgumentError, match="without the scribe"):
            _ = stack.registry
    assert not (tmp_path / "feed.secret").exists()


def test_a_stack_comes_only_from_open_stack(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="no public constructor"):
        engine.app.Stack(config=AppConfig(home=tmp_path))  # type: ignore[call-arg]
