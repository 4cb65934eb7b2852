"""The real stack (:func:`engine.app.open_stack`: git, inotify watcher, scoped file system, PostgreSQL)
as scribe tests use it, and helpers to wait on its events."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from git_repos import GIT_ENV

import adapters
import engine
from engine.app import AppConfig, Stack
from engine.app import open_stack as open_app_stack

__all__ = [
    "Stack",
    "next_event",
    "open_stack",
    "open_test_repo",
    "payload",
    "poll_until",
    "worklog_kind",
]


async def open_test_repo(path: Path, *, gate: engine.PriorityLimiter | None = None) -> engine.Git:
    """The git adapter with the test identity (so commits made through it work)."""
    return await adapters.open_repository(path, env=GIT_ENV, gate=gate)


@asynccontextmanager
async def open_stack(
    pg_url: str,
    *,
    config: engine.ScribeConfig | None = None,
    summarizer: engine.Summarizer | None = None,
    sources: Mapping[str, engine.SourceSpec] | None = None,
    min_interval: float = 0.0,
    watcher_quiet: float = 0.01,
) -> AsyncIterator[Stack]:
    """The application's stack on ``pg_url``, without feed or dashboard, with the test git identity,
    summaries after ``min_interval`` and fast watchers (unless ``config`` says otherwise)."""
    cfg = config or engine.ScribeConfig(
        watcher_options={"quiet": watcher_quiet, "cap": 0.1, "reconcile_interval": None}
    )
    with tempfile.TemporaryDirectory(prefix="scribe-home-") as home:
        app = AppConfig(
            home=Path(home),
            database_url=pg_url,
            feed=False,
            dashboard=False,
            summary_interval=min_interval,
            shutdown_grace=2.0,
        )
        async with open_app_stack(
            app,
            scribe_config=cfg,
            summarizer=summarizer,
            context_sources=sources,
            git_env=GIT_ENV,
        ) as stack:
            yield stack


async def next_event(
    sub: engine.Subscription,
    predicate: Callable[[engine.Event], bool] = lambda e: True,
    *,
    timeout: float = 10.0,
) -> engine.Event:
    """The next event of ``sub`` that satisfies ``predicate`` (fails the test after ``timeout``)."""
    with trio.fail_after(timeout):
        async for event in sub:
            if predicate(event):
                return event
    raise AssertionError("subscription ended")


def worklog_kind(kind: str, session_id: str | None = None) -> Callable[[engine.Event], bool]:
    """A predicate: a ``session.worklog`` event of ``kind`` (for ``session_id``)."""

    def check(e: engine.Event) -> bool:
        return (
            e.topic == "session.worklog"
            and e.payload.get("kind") == kind
            and (session_id is None or e.session_id == session_id)
        )

    return check


def payload(e: engine.Event) -> dict[str, Any]:
    """The event's payload as a plain dict."""
    return dict(e.payload)


async def poll_until(
    check: Callable[[], bool], *, timeout: float = 10.0, every: float = 0.02
) -> None:
    """Wait until ``check()`` is true (for state outside the engine, such as a file's content)."""
    with trio.fail_after(timeout):
        while not check():  # noqa: ASYNC110 - the state is a file, nothing to wait on
            await trio.sleep(every)
