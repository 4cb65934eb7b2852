"""The MCP server's ``get_context`` answers kept between calls: served again while nothing changed,
dropped by a file change, a note, the daemon going away; never kept before the session's watch is
open. A real daemon on a real PostgreSQL and a real work tree, the MCP app over the control socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from daemon_support import ControlDaemon
from git_repos import make_repo

import adapters
from adapters.mcp._context_cache import ContextCache


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "work", files={"app.py": "a = 1\n"})


@pytest.fixture
def daemon(tmp_path: Path, fresh_pg_url: str, repo: Path) -> Iterator[ControlDaemon]:
    d = ControlDaemon(tmp_path / "home", fresh_pg_url, repo)
    try:
        yield d
    finally:
        if d.process.proc is not None:
            d.close()


@asynccontextmanager
async def open_app(daemon: ControlDaemon) -> AsyncIterator[adapters.McpApp]:
    async with adapters.open_control_client(daemon.home / "scribe.sock", timeout=30) as client:
        async with adapters.open_mcp_app(client) as app:
            yield app


async def context(app: adapters.McpApp, sid: str) -> dict[str, Any]:
    result = await app.call_tool("get_context", {"session": sid, "role": "implementer"})
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def kept(app: adapters.McpApp, sid: str) -> dict[str, Any]:
    """Ask until an answer is served by the cache (the watch opens in the background)."""
    with trio.fail_after(30):
        while True:
            before = app.contexts.hits
            answer = await context(app, sid)
            if app.contexts.hits > before:
                return answer
            await trio.sleep(0.05)


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    with trio.fail_after(30):
        while not await check():  # noqa: ASYNC110 - another process changes what is checked
            await trio.sleep(0.05)


async def seen(
    app: adapters.McpApp, sid: str, text: str, part: Callable[[dict[str, Any]], str]
) -> bool:
    return text in part(await context(app, sid))


async def closed(app: adapters.McpApp) -> bool:
    await trio.lowlevel.checkpoint()
    return not any(app._watches.is_open(s) for s in app.watched)


def status_paths(answer: dict[str, Any]) -> str:
    return repr(answer["sources"]["status"]["value"])


async def test_an_unchanged_tree_is_answered_from_the_server(daemon: ControlDaemon) -> None:
    async with open_app(daemon) as app:
        sid = (await app.call_tool("start_session", {"repo": str(daemon.process.cwd)}))
        session = sid.structured_content["id"]  # type: ignore[index]
        first = await context(app, session)
        assert app.contexts.hits == 0  # nothing is kept before its session is watched
        again = await kept(app, session)
        assert again["session_id"] == first["session_id"] == session
        hits = app.contexts.hits
        for _ in range(5):
            assert await context(app, session) == again
        assert app.contexts.hits == hits + 5


async def test_a_file_change_is_seen_at_the_next_call(daemon: ControlDaemon, repo: Path) -> None:
    async with open_app(daemon) as app:
        started = await app.call_tool("start_session", {"repo": str(repo)})
        session = started.structured_content["id"]  # type: ignore[index]
        before = await kept(app, session)
        assert "new_module.py" not in status_paths(before)
        (repo / "new_module.py").write_text("b = 2\n")
        await until(lambda: seen(app, session, "new_module.py", status_paths))
        after = await kept(app, session)
        assert "new_module.py" in status_paths(after)


async def test_a_note_drops_the_kept_answer(daemon: ControlDaemon, repo: Path) -> None:
    async with open_app(daemon) as app:
        started = await app.call_tool("start_session", {"repo": str(repo)})
        session = started.structured_content["id"]  # type: ignore[index]
        await kept(app, session)
        noted = await app.call_tool("add_note", {"session": session, "text": "cache the context"})
        assert not noted.is_error
        await until(lambda: seen(app, session, "cache the context", lambda a: repr(a["sources"])))


async def test_nothing_is_served_once_the_daemon_is_gone(daemon: ControlDaemon, repo: Path) -> None:
    async with open_app(daemon) as app:
        started = await app.call_tool("start_session", {"repo": str(repo)})
        session = started.structured_content["id"]  # type: ignore[index]
        await kept(app, session)
        daemon.close()
        await until(lambda: closed(app))
        result = await app.call_tool("get_context", {"session": session, "role": "implementer"})
        assert result.is_error  # the daemon is asked, and is not there


async def test_only_answers_wholly_from_the_daemons_cache_are_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Watches:
        def __init__(self) -> None:
            self.acquired: list[str] = []
            self.observer: Any = None

        def observe(self, observer: Any) -> None:
            self.observer = observer

        def is_open(self, session: str) -> bool:
            return True

        def acquire(self, session: str) -> None:
            self.acquired.append(session)

        def release(self, session: str) -> None:
            pass

    watches = Watches()
    cache = ContextCache(watches)  # type: ignore[arg-type]
    ok = {"status": "ok", "value": 1}
    good = {"session_id": "s1", "from_cache": True, "fresh_for": None, "sources": {"a": ok}}
    for answer in (
        {**good, "from_cache": False},
        {**good, "sources": {"a": {"status": "timeout"}}},
        {**good, "fresh_for": 0.0},
        "not a mapping",
    ):
        cache.offer_nowait(b"k", answer, cache.mark())
        assert cache.lookup_nowait(b"k") is None
    mark = cache.mark()
    watches.observer("s2", {"topic": "session.worklog"})  # an event while the call was out
    cache.offer_nowait(b"k", good, mark)
    assert cache.lookup_nowait(b"k") is None
    cache.offer_nowait(b"k", good, cache.mark())
    assert cache.lookup_nowait(b"k") == good
    watches.observer("s1", {"topic": "session.context", "event": "dirty"})
    assert cache.lookup_nowait(b"k") is None
    cache.offer_nowait(b"k", {**good, "fresh_for": 5.0}, cache.mark())
    assert cache.lookup_nowait(b"k") is not None
    await trio.sleep(5.0)
    assert cache.lookup_nowait(b"k") is None  # its fresh_for has passed
    assert watches.acquired == ["s1"]
