"""The dashboard's tests' parts: a whole daemon in the test's trio run (``run_daemon``, its dashboard
and control socket on a real database), plain HTTP with and without the sign-in cookie, headless
Chromium (Debian's) through playwright's sync API in a worker thread, and where screenshots are
kept (``$SCRIBE_TEST_ARTIFACTS``, default ``tests/artifacts/``)."""

from __future__ import annotations

import functools
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

import adapters
from engine.app import AppConfig
from engine.app._control_handler import DaemonInfo
from engine.app._daemon import run_daemon

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Seconds a playwright expectation of these tests waits (a loaded machine is slow; not a bound).
EXPECT_TIMEOUT = 60_000


def artifact(name: str) -> Path:
    """Where a test keeps ``name`` (a screenshot) after it ends: under ``$SCRIBE_TEST_ARTIFACTS``,
    else ``tests/artifacts/`` (ignored by git)."""
    root = Path(os.environ.get("SCRIBE_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
    root.mkdir(parents=True, exist_ok=True)
    return root / name


def http_get(url: str, cookie: str | None = None) -> tuple[int, str, bytes]:
    """GET ``url`` (with ``cookie`` as the ``Cookie`` header): status, content type and body."""
    request = urllib.request.Request(url, headers={} if cookie is None else {"Cookie": cookie})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers["content-type"], response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers["content-type"], exc.read()


def sign_in(login_url: str) -> str:
    """Open a sign-in link without following its redirect; the ``Cookie`` header it grants."""
    parts = urllib.parse.urlsplit(login_url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}")
        response = conn.getresponse()
        response.read()
        assert response.status == 303, response.status
        return response.headers["set-cookie"].split(";", 1)[0]
    finally:
        conn.close()


@dataclass
class RunningDaemon:
    """A daemon running in the test's trio run.

    Attributes:
        home: its home.
        info: what it reported once ready.
        login_url: a one-time dashboard sign-in link.
        client: a control client on its socket (blocking: call it from a worker thread).
    """

    home: Path
    info: DaemonInfo
    login_url: str
    client: adapters.ControlClient

    @property
    def url(self) -> str:
        """The dashboard's URL."""
        assert self.info.dashboard_url is not None
        return self.info.dashboard_url

    async def call(self, op: str, **args: Any) -> Any:
        """One control request through the socket, from a worker thread."""
        return await trio.to_thread.run_sync(self.client.call, op, args)


@asynccontextmanager
async def open_daemon(database_url: str, **settings: Any) -> AsyncIterator[RunningDaemon]:
    """``run_daemon`` on ``database_url`` with free ports, no session and ``settings`` (fields of
    :class:`AppConfig`) for the duration of the block; stopped on the way out."""
    with tempfile.TemporaryDirectory(prefix="scribe-home-") as tmp:
        home = Path(tmp)
        config = AppConfig(
            home=home,
            database_url=database_url,
            feed_port=0,
            dashboard_port=0,
            shutdown_grace=1.0,
            **settings,
        )
        stop = trio.Event()
        started = trio.Event()
        seen: list[tuple[DaemonInfo, str]] = []

        def ready(info: DaemonInfo, notes: list[str], link: str | None) -> None:
            assert link is not None
            seen.append((info, link))
            started.set()

        daemon = functools.partial(run_daemon, config, ready=ready, stop=stop, handle_signals=False)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(daemon)
            with trio.fail_after(120):  # a guard against hanging, not a latency bound
                await started.wait()
            info, link = seen[0]
            client = adapters.ControlClient(home / "scribe.sock", timeout=60)
            try:
                yield RunningDaemon(home, info, link, client)
            finally:
                stop.set()


@contextmanager
def open_page(profile: Path) -> Iterator[tuple[Any, list[str]]]:
    """A Chromium page at 1280x800 (in a worker thread) and the page errors it raises."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 800},
        )
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page, errors
        finally:
            context.close()
