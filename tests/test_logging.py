"""Operability: ``scribe --version``, the daemon's log (levels, text and JSON, the rotating 0600 file in
its home) and swallowed errors logged once."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import logging.handlers
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from git_repos import GIT_ENV
from scribe_support import open_test_repo

import adapters
import engine
from engine import ContextError, ContextProvider, ContextTarget, SourceSpec, SourceStatus
from engine.app import ConfigError, load_config

SCRIBE = str(Path(sys.executable).with_name("scribe"))


def _scribe(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ) if env is None else env,
        timeout=120,
        check=False,
    )


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    out = _scribe("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"scribe {version('scribe-engine')}\n"


# -- the configuration ----------------------------------------------------------------------------


def test_log_level_flag_over_environment_over_file_over_default(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    env = {"SCRIBE_HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "none")}
    default = load_config(environ=env)
    assert (default.log_level, default.log_format) == ("info", "text")
    config.write_text('log_level = "error"\nlog_format = "json"\n')
    from_file = load_config(config_file=config, environ=env)
    assert (from_file.log_level, from_file.log_format) == ("error", "json")
    env["SCRIBE_LOG_LEVEL"] = "warning"
    assert load_config(config_file=config, environ=env).log_level == "warning"
    flagged = load_config({"log_level": "debug"}, config_file=config, environ=env)
    assert (flagged.log_level, flagged.log_format) == ("debug", "json")
    assert load_config({"log_level": None}, config_file=config, environ=env).log_level == "warning"


def test_a_bad_log_level_or_format_is_refused_with_where_it_came_from(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('log_level = "loud"\n')
    with pytest.raises(ConfigError) as info:
        load_config(config_file=config, environ={})
    assert info.value.key == "log_level" and info.value.source == str(config)
    with pytest.raises(ConfigError) as info:
        load_config(environ={"SCRIBE_LOG_FORMAT": "xml", "XDG_CONFIG_HOME": str(tmp_path)})
    assert info.value.source == "SCRIBE_LOG_FORMAT"
    out = _scribe("serve", "--log-level", "verbose")
    assert out.returncode == 2 and "--log-level" in out.stderr


# -- the formats ----------------------------------------------------------------------------------

HOSTILE = "fix [/] parser \x1b[31mred\x1b[0m\nFORGED ERROR line \u202eevil"


def test_user_text_stays_data_in_both_formats(tmp_path: Path) -> None:
    from engine.app._logging import daemon_logging

    log = logging.getLogger("engine.test_logging")
    for fmt in ("text", "json"):
        home = tmp_path / fmt
        stream = io.StringIO()
        with daemon_logging(home, level="debug", fmt=fmt, stream=stream) as path:
            log.debug("session %s", HOSTILE, extra={"session": HOSTILE})
            try:
                raise ValueError(HOSTILE)
            except ValueError:
                log.warning("it failed", exc_info=True)
        written = path.read_text()
        assert written == stream.getvalue()
        lines = written.splitlines()
        assert not any(c in written for c in "\x1b\u202e\r")
        if fmt == "json":
            records = [json.loads(line) for line in lines]
            assert len(records) == 2
            assert records[0]["message"] == f"session {HOSTILE}"
            assert records[0]["session"] == HOSTILE and records[0]["level"] == "debug"
            assert records[0]["logger"] == "engine.test_logging" and records[0]["time"]
            assert records[1]["message"] == "it failed" and HOSTILE in records[1]["exception"]
        else:
            # one record a line; a record's further lines (its traceback) are indented
            starts = [line for line in lines if not line.startswith("  ")]
            assert len(starts) == 2
            assert "DEBUG engine.test_logging: session fix [/] parser \\x1b[31mred" in starts[0]
            assert "\\nFORGED ERROR line \\u202eevil" in starts[0] and "session=fix" in starts[0]
            assert "WARNING engine.test_logging: it failed" in starts[1]
            assert any("ValueError: fix [/] parser \\x1b[31m" in line for line in lines)
    # the handlers are gone again
    assert not any(
        isinstance(h, logging.handlers.RotatingFileHandler) for h in logging.getLogger().handlers
    )


def test_the_log_file_is_private_and_rotates_privately(tmp_path: Path) -> None:
    from engine.app._logging import daemon_logging, log_file

    home = tmp_path / "home"
    log = logging.getLogger("adapters.test_logging")
    with daemon_logging(home, level="info", fmt="json", stream=io.StringIO()) as path:
        assert path == log_file(home) == home / "logs" / "scribe.log"
        handler = next(
            h
            for h in logging.getLogger().handlers
            if isinstance(h, logging.handlers.RotatingFileHandler)
        )
        assert (handler.maxBytes, handler.backupCount) == (10 * 1024 * 1024, 5)
        log.info("one")
        handler.doRollover()
        log.info("two")
        log.debug("not at info")
    for f in (path, path.with_name("scribe.log.1")):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [json.loads(x)["message"] for x in path.read_text().splitlines()] == ["two"]
    # a symlink in the file's place is refused, not followed
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        with daemon_logging(home, stream=io.StringIO()):
            pass
    assert not (tmp_path / "elsewhere").exists()


# -- swallowed errors -----------------------------------------------------------------------------


def test_log_throttle_logs_a_failure_and_its_recovery_not_each_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = logging.getLogger("engine.test_throttle")
    throttle = engine.LogThrottle(log, period=60.0, clock=lambda: now[0])
    caplog.set_level(logging.DEBUG, logger="engine.test_throttle")
    for _ in range(70):
        throttle.failed("db", "store down: %s", "refused")
        now[0] += 1.0
    throttle.failed("other", "other down")
    assert throttle.is_failing("db")
    throttle.recovered("db", "store back")
    throttle.recovered("db", "store back")  # not failing any more: nothing
    now[0] += 1.0
    throttle.failed("db", "store down: %s", "again")
    levels = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [m for lv, m in levels if lv >= logging.INFO] == [
        "store down: refused",
        "store down: refused (59 more since the last report)",
        "other down",
        "store back",
        "store down: again",
    ]
    assert sum(lv == logging.DEBUG for lv, _ in levels) == 68


FILES = {"src/app.py": "a = 1\n", "TODO.md": "- [ ] ship\n"}


async def test_a_failing_context_source_is_logged_once_and_its_recovery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from git_repos import make_repo

    repo = make_repo(tmp_path / "work", files=FILES)
    broken = [True]
    spec = engine.default_sources()["branch"]
    real_fetch = spec.fetch

    async def fetch(t: ContextTarget) -> Any:
        if broken[0]:
            raise ContextError("branch is broken")
        return await real_fetch(t)

    sources: dict[str, SourceSpec] = {"branch": dataclasses.replace(spec, fetch=fetch)}
    roles = {"r": engine.RoleProfile(("branch",))}
    caplog.set_level(logging.DEBUG, logger="engine")
    async with engine.open_engine() as eng:
        provider = ContextProvider(eng, sources=sources, roles=roles)
        target = ContextTarget(
            session_id="s-1", git=await open_test_repo(repo), fs=adapters.ScopedFileSystem(repo)
        )
        provider.attach(target)
        for _ in range(5):
            ctx = await provider.context("s-1", "r")
            assert ctx.sources["branch"].status is SourceStatus.ERROR
        broken[0] = False
        assert (await provider.context("s-1", "r")).sources["branch"].status is SourceStatus.OK
    mine = [r for r in caplog.records if r.name == "engine._context._runner"]
    warned = [r for r in mine if r.levelno == logging.WARNING]
    assert len(warned) == 1
    assert warned[0].getMessage() == (
        "context source branch of session s-1 failed: ContextError: branch is broken"
    )
    assert warned[0].__dict__["session"] == "s-1" and warned[0].__dict__["source"] == "branch"
    assert warned[0].exc_info is not None
    assert [r.getMessage() for r in mine if r.levelno == logging.INFO] == [
        "context source branch of session s-1 answers again"
    ]


# -- the daemon -----------------------------------------------------------------------------------


def _refused_handshake(feed_url: str, token: str) -> bytes:
    """A websocket handshake to the feed with ``token``; the first bytes of the answer."""
    parts = urllib.parse.urlsplit(feed_url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            (
                f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        return sock.recv(64)


def test_the_daemon_writes_json_lines_to_its_private_log_file(
    tmp_path: Path, fresh_pg_url: str
) -> None:
    home = tmp_path / "home"
    env = {**os.environ, **GIT_ENV, "SCRIBE_HOME": str(home), "SCRIBE_DATABASE_URL": fresh_pg_url}
    env.pop("SCRIBE_LOG_LEVEL", None)
    args = ["--no-session", "--dashboard-port", "0", "--feed-port", "0"]
    proc = subprocess.Popen(
        [SCRIBE, "serve", *args, "--log-format", "json", "--log-level", "debug"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        printed: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line or line.startswith("Try:"):
                break
            key, _, value = line.strip().partition(" ")
            printed[key] = value.strip()
        assert "feed" in printed, printed
        feed_url = printed["live"].removeprefix("feed").strip()
        token = printed["feed"].removeprefix("token").strip()
        for _ in range(3):  # a client with a bad token, three times
            assert _refused_handshake(feed_url, "not-a-token").startswith(b"HTTP/1.1 401")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    path = home / "logs" / "scribe.log"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    records = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert stderr.splitlines() == text.splitlines()
    messages = [r["message"] for r in records]
    assert messages[0].startswith("scribe ") and "starting with home" in messages[0]
    assert messages[-1] == "scribe stopped"
    assert any(r["level"] == "debug" for r in records)
    refused = [r for r in records if r["message"].startswith("feed connection refused")]
    assert [r["level"] for r in refused] == ["warning", "debug", "debug"]
    assert refused[0]["logger"] == "adapters.feed._server"
    assert "invalid_token" in refused[0]["message"]
    assert token not in text and fresh_pg_url not in text
