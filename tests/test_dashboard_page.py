"""The dashboard page in headless Chromium on a whole daemon on the real PostgreSQL: a session's
worklog as readable lines, its summary and context by role, the session filters, a memory search
with citations, history charts with points, and an alert that fires while the database is stopped
and clears once it is back. Each test keeps a screenshot (:func:`dashboard_support.artifact`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio
from dashboard_support import RunningDaemon, artifact, open_daemon, open_page
from git_repos import GIT_ENV, git, make_repo
from pg_support import start_test_server

import adapters

SOME = re.compile(r"^[1-9][0-9]*$")


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


@dataclass
class Work:
    """What a test does to the daemon's sessions and repository while the page is open (called
    from the browser's thread back into the test's trio run)."""

    daemon: RunningDaemon
    repo: Path
    session: str = ""

    async def start(self) -> str:
        made = await self.daemon.call(
            "start", repo=str(self.repo), name="payments", tags=["billing"], idle_timeout=None
        )
        self.session = made["id"]
        await self.daemon.call("start", repo=str(self.repo), name="docs", idle_timeout=None)
        return self.session

    async def edit_and_commit(self) -> str:
        (self.repo / "app.py").write_text("a = 2\n")
        (self.repo / "README.md").write_text("# shop, now with refunds\n")
        await self.daemon.call("append", session=self.session, text="refunds retry twice")
        await trio.sleep(1.0)  # the watcher's quiet period passes: the edits are one entry
        await trio.to_thread.run_sync(git, self.repo, "add", "-A")
        await trio.to_thread.run_sync(git, self.repo, "commit", "-q", "-m", "Retry refunds")
        return (await trio.to_thread.run_sync(git, self.repo, "rev-parse", "HEAD")).strip()


def browse_session(url: str, profile: Path, work: Work) -> dict[str, Any]:
    from playwright.sync_api import expect

    seen: dict[str, Any] = {}
    with open_page(profile) as (page, errors):
        page.goto(url)
        expect(page.locator("#feed-status")).to_have_attribute("data-status", "live")
        sid = trio.from_thread.run(work.start)
        rows = page.locator("#session-rows tr.session")
        expect(rows).to_have_count(2)
        row = page.locator(f'tr[data-session-id="{sid}"]')
        expect(row.locator(".tags")).to_have_text("billing")
        expect(row.locator(".repo")).to_have_text(work.repo.name)
        page.select_option("#filter-tag", "billing")
        expect(rows).to_have_count(1)
        page.select_option("#filter-tag", "")
        page.select_option("#filter-state", "active")
        expect(rows).to_have_count(2)
        row.click()
        commit = trio.from_thread.run(work.edit_and_commit)
        worklog = page.locator("#worklog")
        expect(worklog.locator('li[data-kind="note"] .text')).to_have_text(
            "note: refunds retry twice"
        )
        files = worklog.locator('li[data-kind="files"] .text').filter(has_text="README.md")
        expect(files.first).to_contain_text("modified")
        expect(files.first).to_contain_text("app.py")
        expect(worklog.locator('li[data-kind="commit"] .text')).to_contain_text(
            f"commit {commit[:8]} Retry refunds"
        )
        expect(worklog.locator('li[data-kind="session_start"] .text')).to_contain_text(
            "session started on main"
        )
        seen["lines"] = worklog.locator("li .text").all_inner_texts()
        page.click('#detail-tabs [data-tab="summary"]')
        expect(page.locator("#summary [data-version]")).to_be_visible()
        expect(page.locator("#summary")).to_contain_text("README.md")
        page.click('#detail-tabs [data-tab="context"]')
        page.select_option("#context-role", "planner")
        branch = page.locator('#context details[data-source="branch"]')
        expect(branch).to_contain_text("main")
        expect(page.locator("#context")).to_contain_text("planner:")
        page.screenshot(path=str(artifact("dashboard-session.png")), full_page=True)
        seen["errors"] = errors
    return seen


async def test_the_page_shows_a_sessions_worklog_summary_and_context(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "shop", files={"app.py": "a = 1\n", "README.md": "# shop\n"})
    async with open_daemon(fresh_pg_url) as daemon:
        seen = await trio.to_thread.run_sync(
            browse_session, daemon.login_url, tmp_path / "profile", Work(daemon, repo)
        )
    assert seen["errors"] == []
    assert not any("{" in line or '"' in line for line in seen["lines"]), seen["lines"]


def browse_memory(url: str, profile: Path, daemon: RunningDaemon) -> dict[str, Any]:
    from playwright.sync_api import expect

    seen: dict[str, Any] = {}
    with open_page(profile) as (page, errors):
        page.goto(url)
        expect(page.locator("#feed-status")).to_have_attribute("data-status", "live")
        trio.from_thread.run(
            lambda: daemon.call("remember", text="the staging database is called <nightingale>")
        )
        page.fill("#memory-query", "staging database")
        page.click('#memory-form button[type="submit"]')
        first = page.locator("#memory-results li").first
        expect(first.locator(".text")).to_have_text("the staging database is called <nightingale>")
        expect(first.locator(".citation")).to_have_text(re.compile(r"^\[message:\d+\]$"))
        page.select_option("#memory-mode", "rehydrate")
        page.click('#memory-form button[type="submit"]')
        expect(page.locator('#memory-results li[data-citation="messages:1"] .text')).to_have_text(
            "user: the staging database is called <nightingale>"
        )
        expect(page.locator("#memory-note")).to_contain_text("of 2000 tokens")
        # The charts draw the history's points (sampled every second).
        for chart in ("#chart-events", "#chart-gates"):
            expect(page.locator(chart)).to_have_attribute("data-points", SOME)
            expect(page.locator(chart)).to_have_attribute("data-series", SOME)
        expect(page.locator("#chart-events canvas")).to_be_visible()
        with page.expect_response(lambda r: "last=86400" in r.url) as day:
            page.click('#chart-range [data-range="86400"]')
        seen["day"] = day.value.json()
        expect(page.locator("#chart-events")).to_have_attribute("data-points", SOME)
        expect(page.locator('#gates tr[data-gate="db"] .capacity')).to_have_text(SOME)
        seen["images"] = page.locator("#memory-results img").count()
        page.screenshot(path=str(artifact("dashboard-memory-charts.png")), full_page=True)
        seen["errors"] = errors
    return seen


async def test_memory_search_and_history_charts(fresh_pg_url: str, tmp_path: Path) -> None:
    async with open_daemon(fresh_pg_url) as daemon:
        seen = await trio.to_thread.run_sync(
            browse_memory, daemon.login_url, tmp_path / "profile", daemon
        )
    assert seen["errors"] == [] and seen["images"] == 0
    published = seen["day"]["series"]["events.published.rate"]
    assert published and all(len(point) == 3 for point in published)


def browse_outage(url: str, profile: Path, server: adapters.EmbeddedServer) -> dict[str, Any]:
    from playwright.sync_api import expect

    seen: dict[str, Any] = {}
    with open_page(profile) as (page, errors):
        page.goto(url)
        expect(page.locator("#feed-status")).to_have_attribute("data-status", "live")
        expect(page.locator("#alert-count")).to_have_attribute("data-firing", "0")
        server.stop("immediate")  # the fault: the database goes away
        alert = page.locator('#alerts li[data-alert="database_down"]')
        expect(alert).to_have_attribute("data-state", "firing")
        expect(alert.locator(".text")).to_have_text("the database does not answer")
        expect(page.locator("#alert-count")).to_have_attribute("data-firing", SOME)
        page.screenshot(path=str(artifact("dashboard-alert-firing.png")), full_page=True)
        server.start()
        expect(alert).to_have_attribute("data-state", "resolved")
        expect(page.locator("#alert-count")).to_have_attribute("data-firing", "0")
        expect(page.locator('#health dd[data-key="database"]')).to_have_text("up")
        page.screenshot(path=str(artifact("dashboard-alert-resolved.png")), full_page=True)
        seen["errors"] = errors
    return seen


async def test_an_alert_shows_while_the_database_is_stopped_and_clears_after(
    pg_tmp_path: Path, tmp_path: Path
) -> None:
    server = start_test_server(pg_tmp_path)
    try:
        server.create_database("scribe")
        async with open_daemon(
            server.url("scribe"),
            health_interval=0.5,  # the alerts are judged as often
            alert_for_seconds=0.5,
            alert_disk_percent=100.0,  # not this test's fault
            alert_loop_lag_ms=60_000.0,  # nor this one (a loaded machine lags)
        ) as daemon:
            seen = await trio.to_thread.run_sync(
                browse_outage, daemon.login_url, tmp_path / "profile", server
            )
    finally:
        server.stop("fast")
    assert seen["errors"] == []


def browse_earlier(url: str, profile: Path, sid: str, stored: int) -> dict[str, Any]:
    from playwright.sync_api import expect

    seen: dict[str, Any] = {}
    with open_page(profile) as (page, errors):
        page.goto(url)
        expect(page.locator("#feed-status")).to_have_attribute("data-status", "live")
        page.locator(f'tr[data-session-id="{sid}"]').click()
        lines = page.locator("#worklog li")
        note = page.locator("#worklog-note")
        expect(lines).to_have_count(500)  # the most kept before one pages back
        expect(note).to_have_text("the newest 500 entries, then live")
        expect(page.locator('#worklog li[data-kind="session_start"]')).to_have_count(0)
        earlier = page.locator("#worklog-earlier")
        earlier.click()  # 200 more
        expect(lines).to_have_count(700)
        expect(note).to_have_text("the newest 700 entries, then live")
        earlier.click()  # the rest
        expect(lines).to_have_count(stored)
        expect(earlier).to_be_hidden()
        expect(note).to_have_text(f"all {stored} entries")
        expect(page.locator('#worklog li[data-kind="session_start"]')).to_have_count(1)
        seen["notes"] = page.locator('#worklog li[data-kind="note"] .text').all_inner_texts()
        page.screenshot(path=str(artifact("dashboard-earlier.png")), full_page=True)
        seen["errors"] = errors
    return seen


async def test_earlier_worklog_entries_load_page_by_page(fresh_pg_url: str, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "shop", files={"app.py": "a = 1\n"})
    async with open_daemon(fresh_pg_url) as daemon:
        made = await daemon.call("start", repo=str(repo), name="long", idle_timeout=None)
        for i in range(750):
            await daemon.call("append", session=made["id"], text=f"step {i}")
        stored = len((await daemon.call("worklog", session=made["id"]))["entries"])
        assert 750 < stored < 900  # the notes and the session's start: two pages beyond 500
        seen = await trio.to_thread.run_sync(
            browse_earlier, daemon.login_url, tmp_path / "profile", made["id"], stored
        )
    assert seen["errors"] == []
    assert seen["notes"] == [f"note: step {i}" for i in range(750)]  # in order, none twice
