"""Only the owner reads: the dashboard's one-time link and cookie, the Host allowlist on the dashboard
and the feed, the feed's Origin check, and a second local user who reaches the ports but gets nothing."""

from __future__ import annotations

import http.client
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
from feed_support import SECRET, handshake_status

import adapters
import engine
from adapters.http._access import HostAllowlist, url_host
from adapters.http._login import MAX_LOGIN_TOKENS, Logins
from engine.app import AppConfig, UnsafeHomeError, open_stack
from engine.app._home import prepare_home

# ---------------------------------------------------------------------------- the policy


def test_the_host_allowlist() -> None:
    hosts = HostAllowlist.of("127.0.0.1", ["scribe.lan"])
    for good in ("127.0.0.1:8765", "localhost:8765", "LOCALHOST:8765", "[::1]:8765", "scribe.lan"):
        assert hosts.allows_host(good, 8765), good
    assert hosts.allows_host("scribe.lan:443", 8765)
    for bad in (
        None, "", "evil.example:8765", "127.0.0.1:8766", "localhost", "127.0.0.1.evil.example:8765",
        "127.0.0.1:8765 ", "::1:8765", "[::1", "localhost:", "localhost:x", "localhost.:8765",
        "127.0.0.2:8765", "localhost:99999", "a" * 600,
    ):  # fmt: skip
        assert not hosts.allows_host(bad, 8765), bad
    assert HostAllowlist.of("192.168.1.5").allows_host("192.168.1.5:8765", 8765)
    assert not HostAllowlist.of("0.0.0.0").allows_host("0.0.0.0:8765", 8765)
    assert HostAllowlist.of("::1").allows_host("[::1]:8765", 8765)
    # A server bound to a wildcard prints a loopback URL, which its allowlist accepts.
    assert [url_host(a) for a in ("0.0.0.0", "::", "::1", "10.0.0.2")] == [
        "127.0.0.1", "[::1]", "[::1]", "10.0.0.2",
    ]  # fmt: skip


def test_the_origin_check() -> None:
    hosts = HostAllowlist.of("127.0.0.1", ["scribe.lan"])
    for good in ("http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765",
                 "https://scribe.lan"):  # fmt: skip
        assert hosts.allows_origin(good, [8765]), good
    for bad in (
        "null", "", "http://evil.example:8765", "http://127.0.0.1:8766", "file://", "ws://127.0.0.1:8765",
        "http://127.0.0.1:8765/x", "http://user@127.0.0.1:8765", "http://127.0.0.1", "chrome-extension://x",
    ):  # fmt: skip
        assert not hosts.allows_origin(bad, [8765]), bad
    assert not hosts.allows_origin("http://127.0.0.1:8765", [])


def test_a_one_time_token_works_once_and_expires() -> None:
    logins = Logins(ttl=600.0)
    token = logins.mint(now=100.0)
    cookie = logins.redeem(token, now=101.0)
    assert cookie is not None and logins.signed_in(cookie)
    assert logins.redeem(token, now=102.0) is None
    late = logins.mint(now=200.0)
    assert logins.redeem(late, now=800.0) is None
    assert not logins.signed_in(None) and not logins.signed_in("") and not logins.signed_in(token)
    first = logins.mint(now=0.0)
    for _ in range(MAX_LOGIN_TOKENS):
        logins.mint(now=0.0)
    assert logins.redeem(first, now=1.0) is None  # the oldest unused token went first


def test_the_home_is_made_0700_and_tightened(tmp_path: Path) -> None:
    home = tmp_path / "a" / "home"
    assert prepare_home(home) == []
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    home.chmod(0o755)
    (home / "feed.secret").write_text("x")
    (home / "feed.secret").chmod(0o644)
    notes = prepare_home(home)
    search = 0o001 if os.geteuid() == 0 else 0  # kept for the embedded server's system user
    assert stat.S_IMODE(home.stat().st_mode) == 0o700 | search
    assert stat.S_IMODE((home / "feed.secret").stat().st_mode) == 0o600
    assert len(notes) == 2 and "0755" in notes[0] and "0644" in notes[1]


def test_a_shared_or_foreign_home_is_refused_not_changed(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(UnsafeHomeError, match="shared directory"):
        prepare_home(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    if os.geteuid() == 0:  # only root can hand a directory to another user
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o755)
        os.chown(foreign, 65534, 65534)
        with pytest.raises(UnsafeHomeError, match="another user"):
            prepare_home(foreign)
        assert stat.S_IMODE(foreign.stat().st_mode) == 0o755


# ---------------------------------------------------------------------------- over HTTP


@dataclass
class Served:
    eng: engine.Engine
    feed: adapters.FeedServer
    dashboard: adapters.Dashboard


@asynccontextmanager
async def serve(home: Path) -> AsyncIterator[Served]:
    async with engine.open_engine(engine.EngineConfig(home=home, shutdown_grace=0.5)) as eng:
        async with adapters.open_feed_server(eng, secret=SECRET) as feed:
            async with adapters.open_dashboard(
                eng, feed_url=feed.url, secret=SECRET, feed=feed, allowed_hosts=["scribe.lan"]
            ) as dashboard:
                yield Served(eng, feed, dashboard)


def get(
    port: int, target: str, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


async def aget(
    port: int, target: str, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    return await trio.to_thread.run_sync(get, port, target, headers)


async def test_config_needs_the_cookie_the_one_time_link_sets(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with serve(tmp_path) as s:
            port = s.dashboard.port
            status, _, body = await aget(port, "/config.json")
            assert status == 401 and b"token" not in body.replace(b"scribe dashboard-url", b"")
            link = urllib.parse.urlsplit(s.dashboard.login_url())
            status, headers, _ = await aget(port, f"/?{link.query}")
            assert status == 303 and headers["location"] == "/"
            assert headers["referrer-policy"] == "no-referrer"
            set_cookie = headers["set-cookie"]
            name, _, rest = set_cookie.partition("=")
            value, *attributes = (a.strip() for a in rest.split(";"))
            assert name == s.dashboard.cookie_name == f"scribe-dashboard-{port}"
            assert set(attributes) == {"Path=/", "HttpOnly", "SameSite=Strict"}
            cookie = {"Cookie": f"other=1; {name}={value}"}
            status, _, body = await aget(port, "/config.json", cookie)
            assert status == 200
            config = json.loads(body)
            assert config["feed_url"] == s.feed.url
            claims = adapters.verify_token(SECRET, config["token"])
            assert not claims.scopes.control and claims.subject == "dashboard"
            # The link works once: a second browser (no cookie) is refused, the first one is
            # sent on to the page.
            status, _, body = await aget(port, f"/?{link.query}")
            assert status == 401 and b"scribe dashboard-url" in body
            status, headers, _ = await aget(port, f"/?{link.query}", cookie)
            assert status == 303 and "set-cookie" not in headers
            for forged in (value[:-2] + "xx", "", "x" * 5000):
                status, _, _ = await aget(port, "/config.json", {"Cookie": f"{name}={forged}"})
                assert status == 401
            status, _, _ = await aget(port, "/?token=" + "A" * 43)
            assert status == 401
            # The page itself holds nothing and is served to anyone on an allowed host.
            status, _, body = await aget(port, "/")
            assert status == 200 and b"Scribe dashboard" in body


async def test_a_foreign_host_is_refused_on_every_path(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with serve(tmp_path) as s:
            port = s.dashboard.port
            link = urllib.parse.urlsplit(s.dashboard.login_url())
            _, headers, _ = await aget(port, f"/?{link.query}")
            cookie = {"Cookie": headers["set-cookie"].split(";", 1)[0]}
            for path in ("/", "/config.json", "/health", "/metrics", "/dashboard.js", "/nothing"):
                for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1:{port + 1}"):
                    status, _, _ = await aget(port, path, {**cookie, "Host": host})
                    assert status == 403, (path, host)
            another = urllib.parse.urlsplit(s.dashboard.login_url())
            status, _, _ = await aget(port, f"/?{another.query}", {"Host": "evil.example"})
            assert status == 403
            for host in (f"localhost:{port}", f"[::1]:{port}", "scribe.lan"):
                status, _, _ = await aget(port, "/config.json", {**cookie, "Host": host})
                assert status == 200, host
            # The refused attempt did not spend the link.
            status, _, _ = await aget(port, f"/?{another.query}")
            assert status == 303
            # No Host at all (HTTP/1.0): 400.
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(b"GET /config.json HTTP/1.0\r\n\r\n")
                head = await stream.receive_some(4096)
            assert head.split(b" ", 2)[1] == b"400"


async def test_health_and_metrics_reveal_no_names_paths_or_tokens(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with serve(tmp_path) as s:
            session = await s.eng.start_session("secret-name /home/me/private-repo")
            port = s.dashboard.port
            for path in ("/health", "/metrics"):
                status, _, body = await aget(port, path)
                assert status == 200
                for secret in ("secret-name", "private-repo", session.id, SECRET, "ey"):
                    assert secret.encode() not in body, (path, secret)


async def test_the_feed_refuses_a_foreign_host_and_other_origins(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with serve(tmp_path) as s:
            port, page = s.feed.port, s.dashboard.port
            token = adapters.make_token(SECRET, adapters.FeedScopes.read_all(), 600)
            bearer = f"Authorization: Bearer {token}"

            async def status(*headers: str, host: str | None = None) -> int:
                return await handshake_status(port, f"/feed?token={token}", headers, host=host)

            assert await status(host="evil.example") == 403
            assert await status(host=f"evil.example:{port}") == 403
            assert await status(host=f"127.0.0.1:{page}") == 403
            assert await status("Origin: http://evil.example") == 403
            assert await status("Origin: null") == 403
            assert await status(f"Origin: http://evil.example:{page}") == 403
            assert await status(f"Origin: http://127.0.0.1:{port}") == 403  # not the dashboard
            assert await status(f"Origin: http://127.0.0.1:{page}") == 101
            assert await status(f"Origin: http://localhost:{page}") == 101
            assert await status(host=f"localhost:{port}") == 101
            # A program (no Origin) with a bearer token, and without one.
            assert await handshake_status(port, "/feed", (bearer,)) == 101
            assert await handshake_status(port, "/feed") == 401
            async with adapters.open_feed_client(s.feed.url, token) as client:
                assert client.epoch == s.feed.epoch
            assert s.feed.statistics().rejected == 8


# ---------------------------------------------------------------------------- a second local user

OTHER_USER = "scribe_other"


@pytest.fixture
def other_user() -> str:
    """A real second local account (made once; the tests run as root)."""
    assert os.geteuid() == 0, "the second-user test makes a local account: run the tests as root"
    try:
        pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER_USER],
            check=True,
            capture_output=True,
        )
    return OTHER_USER


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A directory everyone may pass through (pytest's own tmp_path is 0700, which would hide the
    home whatever its mode)."""
    path = Path(tempfile.mkdtemp(prefix="scribe-access-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def as_user(user: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", user, "--", *command], capture_output=True, text=True, timeout=30
    )


async def test_a_second_local_user_reaches_the_ports_but_reads_nothing(
    pg_url: str, open_parent: Path, other_user: str
) -> None:
    home = open_parent / "home"
    config = AppConfig(home=home, database_url=pg_url, feed_port=0, dashboard_port=0)
    with trio.fail_after(60):
        async with open_stack(config) as stack:
            assert stack.dashboard is not None and stack.feed is not None
            base = stack.dashboard.url

            def curl(url: str) -> subprocess.CompletedProcess[str]:
                return as_user(other_user, "curl", "-s", "-m", "10", "-w", "\n%{http_code}", url)

            health = await trio.to_thread.run_sync(curl, base + "health")
            assert health.stdout.endswith("\n200")  # the port is reachable
            config_json = await trio.to_thread.run_sync(curl, base + "config.json")
            assert config_json.stdout.endswith("\n401"), config_json
            assert "ey" not in config_json.stdout
            assert stat.S_IMODE(home.stat().st_mode) == 0o700
            for command in (["ls", str(home)], ["cat", str(home / "feed.secret")]):
                seen = await trio.to_thread.run_sync(lambda c=command: as_user(other_user, *c))
                assert seen.returncode != 0 and "Permission denied" in seen.stderr, seen
