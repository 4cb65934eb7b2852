"""The ``scribe`` command line against a real daemon subprocess, as a user would type it."""

from __future__ import annotations

import http.client
import re
import stat
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import Daemon, wait_for
from git_repos import git, make_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = make_repo(tmp_path / "work", files={"app.py": "a = 1\n", "TODO.md": "- [ ] x\n"})
    git(root, "checkout", "-q", "-b", "feat/B-31-cli")
    return root


@pytest.fixture
def daemon(tmp_path: Path, fresh_pg_url: str, repo: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "home", fresh_pg_url, repo)
    try:
        yield d
    finally:
        d.kill()


def test_commands_say_clearly_when_no_daemon_runs(daemon: Daemon) -> None:
    for args in (["list"], ["status"], ["info", "B-1"], ["append", "B-1", "hi"]):
        r = daemon.run(*args)
        assert r.returncode == 3, r
        assert "no scribe daemon is running" in r.stderr and "scribe serve" in r.stderr
    r = daemon.run("frobnicate")
    assert r.returncode == 2


def test_cli_against_a_running_daemon(daemon: Daemon, repo: Path, tmp_path: Path) -> None:
    printed = daemon.start()
    assert "Scribe is running" in printed
    for what in ("dashboard   http://127.0.0.1:", "live feed   ws://127.0.0.1:", "feed token  ey"):
        assert what in printed
    assert f"control     {daemon.home / 'scribe.sock'}" in printed
    status = daemon.json("status")
    assert status["socket"] == str(daemon.home / "scribe.sock")
    assert status["gates"]["db"]["adaptive"] is True and status["gates"]["db"]["capacity"] >= 1
    assert status["recommendations"] == []  # a daemon a minute old has nothing to say yet
    assert status["monitoring"] is True and "monitoring is on" in daemon.run("monitoring").stdout
    assert daemon.json("monitoring", "off") == {"enabled": False}
    assert daemon.json("status")["monitoring"] is False
    assert daemon.json("monitoring", "on") == {"enabled": True}
    shown = daemon.run("status")
    assert shown.returncode == 0 and "db gate" in shown.stdout and "adaptive" in shown.stdout
    [session] = daemon.json("list")
    sid = session["id"]
    assert session["backlog_id"] == "B-31" and session["state"] == "active"
    assert status["session"] == sid

    (repo / "app.py").write_text("a = 2\n")
    wait_for(lambda: any(e["kind"] == "files" for e in daemon.json("worklog", sid)["entries"]))
    r = daemon.run("append", "B-31", "Decision:", "keep", "the", "CLI", "thin")
    assert r.returncode == 0 and "note stored" in r.stdout
    r = daemon.run("append", sid, "-", stdin="- [ ] write docs\n")
    assert r.returncode == 0

    md = daemon.run("worklog", "B-31")
    assert md.returncode == 0
    assert md.stdout.startswith("# Worklog: ")
    assert (
        "**Files** modified `app.py`" in md.stdout
        and "**Note** Decision: keep the CLI thin" in md.stdout
    )

    summary = wait_for(
        lambda: (s := daemon.json("summary", sid)["summary"]) and s["next_steps"] and s
    )
    assert summary["decisions"] == ["keep the CLI thin"]
    assert summary["next_steps"] == ["write docs"]

    info = daemon.run("info", sid)
    assert info.returncode == 0 and "feat/B-31-cli" in info.stdout and "B-31" in info.stdout
    ctx = daemon.json("context", sid, "--role", "coder")
    assert ctx["role"] == "coder" and all(s["status"] == "ok" for s in ctx["sources"].values())
    assert ctx["sources"]["branch"]["value"]["branch"] == "feat/B-31-cli"
    table = daemon.run("context", sid, "--role", "planner")
    assert table.returncode == 0 and "source" in table.stdout and "related" in table.stdout

    assert daemon.json("tag", sid, "api", "urgent")["tags"] == ["api", "urgent"]
    assert daemon.json("untag", sid, "urgent")["tags"] == ["api"]
    assert [s["id"] for s in daemon.json("list", "--tag", "api")] == [sid]
    assert daemon.json("list", "--tag", "nope") == []

    other = make_repo(tmp_path / "other", files={"x.py": "x\n"})
    started = daemon.json(
        "start", "--repo", str(other), "--backlog-id", "B-32", "--kind", "planning",
        "--priority", "low", "--tag", "plan,docs", "--no-idle-timeout",
    )  # fmt: skip
    assert started["backlog_id"] == "B-32" and started["tags"] == ["plan", "docs"]
    assert started["kind"] == "planning" and started["idle_timeout"] is None
    assert {s["id"] for s in daemon.json("list", "--status", "active")} == {sid, started["id"]}
    assert daemon.json("stop", "B-32")["state"] == "completed"
    assert [s["id"] for s in daemon.json("list", "--status", "completed")] == [started["id"]]

    bad = daemon.run("context", sid, "--role", "astronaut")
    assert bad.returncode == 1 and "unknown role" in bad.stderr
    missing = daemon.run("info", "B-999")
    assert missing.returncode == 1 and "no session matches" in missing.stderr
    empty = daemon.run("append", sid, "   ")
    assert empty.returncode == 1 and "must not be empty" in empty.stderr
    stopped_again = daemon.run("stop", "B-32")
    assert stopped_again.returncode == 1 and "already completed" in stopped_again.stderr

    assert daemon.json("validate") == {"orphaned": []}
    assert daemon.json("cleanup", "--days", "1")["removed"] == 0
    assert daemon.json("cleanup", "--days", "0")["removed"] == 1
    assert [s["id"] for s in daemon.json("list")] == [sid]

    rest = daemon.stop()
    assert "Scribe stopped." in rest
    assert not (daemon.home / "scribe.sock").exists()
    # the graceful stop ended the live session with its stop entry
    daemon.start("--no-session")
    [after] = daemon.json("list")
    assert after["state"] == "completed"
    entries = daemon.json("worklog", sid)["entries"]
    assert entries[-1]["kind"] == "session_stop" and entries[-1]["payload"]["reason"] == "shutdown"
    daemon.stop()


def test_sigkill_leaves_orphans_and_every_acknowledged_entry(daemon: Daemon, repo: Path) -> None:
    daemon.start("--mirror", ".scribe/{backlog}.md")
    [session] = daemon.json("list")
    sid = session["id"]
    acknowledged = []
    for i in range(20):
        r = daemon.json("append", sid, f"note {i}")
        acknowledged.append(r["seq"])
        (repo / f"f{i}.py").write_text(f"x = {i}\n")
    mirror = repo / ".scribe" / "B-31.md"
    wait_for(mirror.exists)
    daemon.kill()
    assert (daemon.home / "scribe.sock").exists()  # left behind by the killed daemon

    printed = daemon.start("--no-session")
    assert "orphaned" in printed and sid in printed
    [after] = daemon.json("list", "--status", "orphaned")
    assert after["id"] == sid
    stored = {e["seq"]: e for e in daemon.json("worklog", sid)["entries"]}
    for seq in acknowledged:
        assert stored[seq]["kind"] == "note"
    assert [e["payload"]["text"] for s, e in sorted(stored.items()) if e["kind"] == "note"] == [
        f"note {i}" for i in range(20)
    ]
    assert sorted(stored) == list(range(1, len(stored) + 1))
    # the mirror is whole: some complete version, never a torn one
    text = mirror.read_text()
    assert text.startswith("# Worklog: ") and text.endswith("\n")
    assert "**Session started**" in text
    # an orphan can be closed out by hand
    assert daemon.json("stop", sid)["state"] == "completed"
    daemon.stop()


def test_user_text_is_shown_literally(daemon: Daemon, repo: Path) -> None:
    daemon.env["COLUMNS"] = "250"  # no table folds a cell that is looked for below
    daemon.start("--no-session")
    red = "\x1b[31mred\x1b[0m"
    started = daemon.json("start", "--name", "fix [/] parser", "--backlog-id", "B-7")
    sid = started["id"]
    for note in (
        "[skip ci] bump version",
        red,
        "Decision: keep [/] as typed",
        "- [ ] ship [b]it[/b]",
    ):
        assert daemon.run("append", sid, note).returncode == 0
    (repo / f"{red}.txt").write_text("x\n")
    (repo / "app.py").write_text("a = 3\n")
    git(repo, "commit", "-q", "-am", "[skip ci] parse [/] tags")
    wait_for(
        lambda: {"files", "commit"} <= {e["kind"] for e in daemon.json("worklog", sid)["entries"]}
    )
    wait_for(lambda: (s := daemon.json("summary", sid)["summary"]) and s["next_steps"])

    shown = {
        "list": daemon.run("list"),
        "info": daemon.run("info", sid),
        "summary": daemon.run("summary", sid),
        "context": daemon.run("context", sid),
        "worklog": daemon.run("worklog", sid),
    }
    for name, r in shown.items():
        assert r.returncode == 0, (name, r.stderr)
        assert "\x1b" not in r.stdout + r.stderr, name
    for name in ("list", "info", "worklog"):
        assert "fix [/] parser" in shown[name].stdout, name
    for name in ("info", "summary"):
        assert "keep [/] as typed" in shown[name].stdout and "ship [b]it[/b]" in shown[name].stdout
    assert "[skip ci] parse [/] tags" in shown["context"].stdout
    md = shown["worklog"].stdout
    assert "**Note** [skip ci] bump version" in md and "**Note** \\x1b[31mred\\x1b[0m" in md
    assert "[skip ci] parse [/] tags" in md and "`\\x1b[31mred\\x1b[0m.txt`" in md
    # the JSON answer is exact: the escape is in it, as JSON escapes it
    notes = [e["payload"].get("text") for e in daemon.json("worklog", sid)["entries"]]
    assert red in notes and '"\\u001b[31mred' in daemon.run("worklog", sid, "--json").stdout

    # errors quoting what the user typed show it as typed
    missing = daemon.run("info", f"nope [/] {red}")
    assert missing.returncode == 1 and "nope [/] \\x1b[31mred" in missing.stderr
    assert "\x1b" not in missing.stderr


def test_agent_sessions_from_the_command_line(daemon: Daemon, repo: Path, tmp_path: Path) -> None:
    daemon.env["COLUMNS"] = "250"
    (repo / "lib").mkdir()
    daemon.start("--no-session")
    agent = "[b]claude[/b]-5f0c"
    first = daemon.json("start", "--agent-session", agent)
    assert first["agent_session_id"] == agent
    again = daemon.run("start", "--agent-session", agent, "--repo", "lib")
    assert again.returncode == 0 and f"started session {first['id']}" in again.stdout
    assert [s["id"] for s in daemon.json("list")] == [first["id"]]
    info = daemon.run("info", agent)
    assert info.returncode == 0 and "agent session" in info.stdout and agent in info.stdout
    other = make_repo(tmp_path / "other", files={"y.py": "y\n"})
    refused = daemon.run("start", "--agent-session", agent, "--repo", str(other))
    assert refused.returncode == 1 and "already has live session" in refused.stderr

    second = daemon.json("start", "--repo", str(other))
    assert [s["id"] for s in daemon.json("list", "--repo", "lib")] == [first["id"]]
    assert [s["id"] for s in daemon.json("list", "--repo", str(other))] == [second["id"]]
    missing = daemon.run("list", "--repo", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "not a git work tree" in missing.stderr

    seqs = [daemon.json("append", agent, f"note {i}")["seq"] for i in range(3)]
    later = daemon.json("worklog", agent, "--since", str(seqs[0]))["entries"]
    assert [e["seq"] for e in later] == seqs[1:]
    md = daemon.run("worklog", agent, "--since", str(seqs[1]))
    assert md.returncode == 0 and "note 2" in md.stdout and "note 1" not in md.stdout
    negative = daemon.run("worklog", agent, "--since", "-1")
    assert negative.returncode == 1 and "args.since" in negative.stderr
    daemon.stop()


def _open_link(url: str) -> tuple[int, str | None]:
    """GET a dashboard link without following its redirect: the status and the cookie it sets."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}")
        response = conn.getresponse()
        response.read()
        return response.status, response.headers["set-cookie"]
    finally:
        conn.close()


def test_the_dashboard_links_sign_in_once(daemon: Daemon) -> None:
    printed = daemon.start("--no-session")
    [link] = re.findall(r"dashboard   (http://127\.0\.0\.1:\d+/\?token=\S+)", printed)
    assert stat.S_IMODE(daemon.home.stat().st_mode) == 0o700
    status, cookie = _open_link(link)
    assert status == 303 and cookie is not None and "HttpOnly" in cookie
    assert _open_link(link)[0] == 401
    made = daemon.run("dashboard-url")
    assert made.returncode == 0 and "works once" in made.stderr
    fresh = made.stdout.strip()
    assert fresh.startswith(link.split("?", 1)[0] + "?token=") and fresh != link
    assert _open_link(fresh)[0] == 303
    assert _open_link(fresh)[0] == 401
    answer = daemon.json("dashboard-url")
    assert answer["expires_in"] == 600 and _open_link(answer["url"])[0] == 303
    daemon.stop()
