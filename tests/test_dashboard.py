"""The dashboard: /health and /metrics over real HTTP, and the page in headless Chromium."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio
import trio.testing
from dashboard_support import CHROMIUM, artifact, http_get, open_page, sign_in
from feed_support import SECRET

import adapters
import engine


@dataclass
class Stack:
    eng: engine.Engine
    feed: adapters.FeedServer
    dashboard: adapters.Dashboard


@asynccontextmanager
async def open_stack(home: Path) -> AsyncIterator[Stack]:
    async with engine.open_engine(engine.EngineConfig(home=home, shutdown_grace=0.5)) as eng:
        eng.start_service(engine.run_health_monitor, eng, 0.1, name="health")
        async with adapters.open_feed_server(eng, secret=SECRET) as feed:
            async with adapters.open_dashboard(
                eng, feed_url=feed.url, secret=SECRET, feed=feed
            ) as dashboard:
                yield Stack(eng, feed, dashboard)


async def test_health_metrics_and_static_files(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_stack(tmp_path) as stack:
            await stack.eng.start_session("alpha", priority=engine.Priority.HIGH)
            base = stack.dashboard.url
            status, ctype, body = await trio.to_thread.run_sync(http_get, base + "health")
            assert status == 200 and ctype == "application/json"
            health = json.loads(body)
            assert health["status"] == "ok" and health["sessions"]["total"] == 1
            status, ctype, body = await trio.to_thread.run_sync(http_get, base + "metrics")
            assert status == 200 and ctype.startswith("text/plain")
            text = body.decode()
            assert 'scribe_sessions{state="active"} 1.0' in text
            assert "scribe_events_published_total" in text
            assert "scribe_feed_clients 0.0" in text
            status, ctype, body = await trio.to_thread.run_sync(http_get, base)
            assert status == 200 and b"Scribe dashboard" in body
            status, _, body = await trio.to_thread.run_sync(http_get, base + "dashboard.js")
            assert status == 200 and b"WebSocket" in body
            status, _, body = await trio.to_thread.run_sync(http_get, base + "config.json")
            assert status == 401 and json.loads(body)["error"] == "unauthorized"
            cookie = await trio.to_thread.run_sync(sign_in, stack.dashboard.login_url())
            status, _, body = await trio.to_thread.run_sync(http_get, base + "config.json", cookie)
            assert status == 200
            config = json.loads(body)
            assert config["feed_url"] == stack.feed.url
            adapters.verify_token(SECRET, config["token"])
            status, _, _ = await trio.to_thread.run_sync(http_get, base + "nothing-here")
            assert status == 404


def browse(url: str, profile: Path, screenshot: Path, trio_steps: Any) -> dict[str, Any]:
    """Drive Chromium (in a worker thread); ``trio_steps`` calls back into the test's trio run."""
    from playwright.sync_api import expect

    seen: dict[str, Any] = {}
    with open_page(profile) as (page, errors):
        page.goto(url)
        expect(page.locator("#feed-status")).to_have_attribute("data-status", "live")
        # The one-time token left the address bar; the session cookie is HttpOnly and Strict.
        seen["address"] = page.url
        [cookie] = page.context.cookies()
        seen["cookie"] = cookie
        alpha, beta = trio.from_thread.run(trio_steps.start_sessions)
        alpha_row = page.locator(f'tr[data-session-id="{alpha}"]')
        beta_row = page.locator(f'tr[data-session-id="{beta}"]')
        expect(alpha_row.locator(".state")).to_have_text("active")
        expect(alpha_row.locator(".priority")).to_have_text("high")
        expect(beta_row.locator(".state")).to_have_text("active")
        expect(beta_row.locator(".name")).to_contain_text("beta")
        # Live state changes.
        trio.from_thread.run(trio_steps.cancel_beta)
        expect(beta_row.locator(".state")).to_have_text("cancelled")
        # Live worklog of the selected session.
        alpha_row.click()
        expect(alpha_row).to_have_class("session selected")
        trio.from_thread.run_sync(trio_steps.worklog, 5)
        expect(page.locator("#worklog li[data-offset]")).to_have_count(5)
        expect(page.locator("#worklog li").last).to_contain_text("step 4 of the plan")
        expect(page.locator("#health-status")).to_have_attribute("data-status", "ok")
        expect(page.locator('#metrics dd[data-key="sessions"]')).to_have_text("2")
        seen["rows"] = page.locator("#session-rows tr").count()
        page.screenshot(path=str(screenshot), full_page=True)
        seen["errors"] = errors
    return seen


@dataclass
class Steps:
    eng: engine.Engine
    alpha: engine.Session | None = None
    beta: engine.Session | None = None

    async def start_sessions(self) -> tuple[str, str]:
        self.alpha = await self.eng.start_session(
            "alpha: B-1042 feed", priority=engine.Priority.HIGH
        )
        self.beta = await self.eng.start_session(
            "beta: review", priority=engine.Priority.LOW, parent=self.alpha
        )
        return self.alpha.id, self.beta.id

    async def cancel_beta(self) -> None:
        assert self.beta is not None
        self.beta.cancel()
        await self.beta.wait()

    def worklog(self, n: int) -> None:
        assert self.alpha is not None
        for i in range(n):
            self.eng.publish_nowait(
                "session.worklog",
                {"kind": "note", "summary": f"step {i} of the plan"},
                session_id=self.alpha.id,
            )


async def test_dashboard_in_headless_chromium(tmp_path: Path) -> None:
    assert shutil.which(CHROMIUM), "scripts/test.sh installs Debian's chromium"
    with trio.fail_after(90):
        async with open_stack(tmp_path / "home") as stack:
            screenshot = artifact("dashboard-live.png")
            seen = await trio.to_thread.run_sync(
                browse,
                stack.dashboard.login_url(),
                tmp_path / "profile",
                screenshot,
                Steps(stack.eng),
            )
            assert seen["errors"] == []
            assert seen["rows"] == 2
            assert seen["address"] == stack.dashboard.url
            cookie = seen["cookie"]
            assert cookie["name"] == stack.dashboard.cookie_name
            assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
            assert screenshot.stat().st_size > 10_000


async def test_health_is_503_when_a_gate_stays_saturated(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with open_stack(tmp_path) as stack:
            gate = stack.eng.gate("git")
            gate.capacity = 1
            url = stack.dashboard.url + "health"
            async with trio.open_nursery() as nursery, gate.acquire():
                nursery.start_soon(_take_slot, gate)
                await trio.testing.wait_all_tasks_blocked()
                statuses = [(await trio.to_thread.run_sync(http_get, url))[0] for _ in range(6)]
                assert statuses[0] == 200 and statuses[-1] == 503
                _, _, body = await trio.to_thread.run_sync(http_get, url)
                assert "gate git saturated" in json.loads(body)["problems"][0]
            status, _, _ = await trio.to_thread.run_sync(http_get, url)
            assert status == 200


async def _take_slot(gate: engine.PriorityLimiter) -> None:
    async with gate.acquire():
        pass


HOSTILE = "<img src=x onerror=alert(1)>"
TRICKY = "fix [/] parser"


def browse_hostile(url: str, profile: Path, steps: Any) -> dict[str, Any]:
    """Open the page and show sessions and a note named like HTML and like escape sequences."""
    from playwright.sync_api import expect

    seen: dict[str, Any] = {"dialogs": []}
    with open_page(profile) as (page, _errors):
        page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
        page.goto(url)
        expect(page.locator("#feed-status")).to_have_attribute("data-status", "live")
        hostile, tricky = trio.from_thread.run(steps.start_sessions)
        hostile_row = page.locator(f'tr[data-session-id="{hostile}"]')
        expect(hostile_row.locator(".name")).to_have_text(HOSTILE)
        tricky_row = page.locator(f'tr[data-session-id="{tricky}"]')
        expect(tricky_row.locator(".name")).to_have_text(TRICKY)
        hostile_row.click()
        trio.from_thread.run_sync(steps.note)
        expect(page.locator("#worklog li").last).to_contain_text("<b>bold</b>\\x1b[2J \\u202eevil")
        expect(page.locator("#worklog-title")).to_have_text(HOSTILE)
        seen["images"] = page.locator("img").count()
        seen["bold"] = page.locator("#worklog b").count()
    return seen


@dataclass
class HostileSteps:
    eng: engine.Engine
    hostile: engine.Session | None = None

    async def start_sessions(self) -> tuple[str, str]:
        self.hostile = await self.eng.start_session(HOSTILE)
        tricky = await self.eng.start_session(TRICKY)
        return self.hostile.id, tricky.id

    def note(self) -> None:
        assert self.hostile is not None
        self.eng.publish_nowait(
            "session.worklog",
            {"kind": "note", "text": "<b>bold</b>\x1b[2J \u202eevil"},
            session_id=self.hostile.id,
        )


async def test_dashboard_shows_user_text_as_text(tmp_path: Path) -> None:
    with trio.fail_after(90):
        async with open_stack(tmp_path / "home") as stack:
            seen = await trio.to_thread.run_sync(
                browse_hostile,
                stack.dashboard.login_url(),
                tmp_path / "profile",
                HostileSteps(stack.eng),
            )
    assert seen == {"dialogs": [], "images": 0, "bold": 0}
