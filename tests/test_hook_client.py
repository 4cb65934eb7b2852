"""``scribe hook claude-code`` as Claude Code runs it: the installed console script in a subprocess,
the payload on stdin, a real unix socket. The daemon's side of ``hook`` is played by a small
stand-in that speaks the control protocol's wire format and can misbehave on purpose (never answer,
answer garbage, refuse)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import adapters
from engine import visible
from scribe_cli import MAX_HOOK_LOG, MAX_REQUEST_LINE, hook_request_line, socket_path
from scribe_cli import hook_log_path as _hook_log_path
from scribe_cli._hook_log import escape_text, write_hook_log

ROOT = Path(__file__).resolve().parent.parent
#: The installed ``scribe`` console script of this interpreter's environment.
SCRIBE = Path(sys.executable).parent / "scribe"
#: Generous: the hook's own deadline is at most 4 s; this only proves that it ended.
ENDS_WITHIN = 10.0

SESSION = "8f2c3a1e-5b7d-4c6e-9a0b-1d2e3f405162"
TRANSCRIPT = "/home/dev/.claude/projects/-home-dev-shop/8f2c3a1e-5b7d-4c6e-9a0b-1d2e3f405162.jsonl"


def _payload(event: str, **fields: Any) -> dict[str, Any]:
    return {
        "session_id": SESSION,
        "transcript_path": TRANSCRIPT,
        "cwd": "/home/dev/shop",
        "permission_mode": "default",
        "hook_event_name": event,
        **fields,
    }


SESSION_START = _payload("SessionStart", source="startup", model="claude-sonnet-4-5")
PROMPT = _payload("UserPromptSubmit", prompt="Make the cart \x1b[31mtotal\x1b[0m include tax")
TOOL = _payload(
    "PostToolUse",
    tool_name="Edit",
    tool_input={"file_path": "/home/dev/shop/cart.py", "old_string": "a", "new_string": "b"},
    tool_response={"filePath": "/home/dev/shop/cart.py", "success": True},
    tool_use_id="toolu_01ABC",
)


@dataclass
class StandIn:
    """The daemon's end of the socket: records each request line and answers with ``answer``
    (bytes to send, or None: read and never answer)."""

    path: Path
    answer: Callable[[bytes], bytes | None]
    received: list[bytes] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def serve(self, server: socket.socket) -> None:
        server.settimeout(0.05)
        held: list[socket.socket] = []  # connections left unanswered, open until the end
        try:
            while not self.stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                conn.settimeout(5)
                buffer = b""
                with contextlib.suppress(OSError):
                    while b"\n" not in buffer:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buffer += chunk
                line = buffer.partition(b"\n")[0]
                self.received.append(line)
                reply = self.answer(line)
                if reply is None:
                    held.append(conn)
                    continue
                with conn, contextlib.suppress(OSError):
                    conn.sendall(reply)
        finally:
            for conn in held:
                conn.close()


@contextlib.contextmanager
def stand_in(home: Path, answer: Callable[[bytes], bytes | None]) -> Iterator[StandIn]:
    path = Path(socket_path(home))
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    daemon = StandIn(path, answer)
    thread = threading.Thread(target=daemon.serve, args=(server,), daemon=True)
    thread.start()
    try:
        yield daemon
    finally:
        daemon.stop.set()
        thread.join(ENDS_WITHIN)
        server.close()


def _result(context: str | None) -> Callable[[bytes], bytes]:
    def answer(line: bytes) -> bytes:
        rid = json.loads(line)["id"]
        body = {"id": rid, "ok": True, "result": {"additional_context": context}}
        return json.dumps(body).encode() + b"\n"

    return answer


@pytest.fixture
def home() -> Iterator[Path]:
    # short: a unix socket path has at most 107 bytes
    directory = Path(tempfile.mkdtemp(prefix="hk-", dir="/tmp"))
    directory.chmod(0o700)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCRIBE_")}
    return {**env, "SCRIBE_HOME": str(home), "PYTHONPATH": str(ROOT), **extra}


def hook(
    home: Path, stdin: bytes | dict[str, Any], **extra: str
) -> subprocess.CompletedProcess[bytes]:
    data = stdin if isinstance(stdin, bytes) else json.dumps(stdin).encode()
    return subprocess.run(
        [str(SCRIBE), "hook", "claude-code"],
        input=data,
        env=_env(home, **extra),
        capture_output=True,
        timeout=ENDS_WITHIN,
        check=False,
    )


def hook_log_path(home: Path) -> Path:
    return Path(_hook_log_path(home))


def _log_lines(home: Path) -> list[str]:
    return hook_log_path(home).read_text().splitlines()


def _assert_private(home: Path) -> None:
    log = hook_log_path(home)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.parent.stat().st_mode) == 0o700


def test_the_console_script_is_the_front_door() -> None:
    text = SCRIBE.read_text()
    assert "from scribe_cli import main" in text, (
        f"{SCRIBE} does not run scribe_cli:main: reinstall the package (pip install -e .)"
    )


# ------------------------------------------------------------------------------- the contract


def test_session_start_sends_the_contract_line_and_prints_the_briefing(home: Path) -> None:
    briefing = "Last time: the cart total misses tax.\nNext: add the VAT rate."
    with stand_in(home, _result(briefing)) as daemon:
        r = hook(home, SESSION_START)
    assert r.returncode == 0 and r.stderr == b""
    assert daemon.received == [hook_request_line("claude-code", SESSION_START).rstrip(b"\n")]
    assert json.loads(daemon.received[0]) == {
        "id": 1,
        "op": "hook",
        "args": {"agent": "claude-code", "payload": SESSION_START},
    }
    assert daemon.received[0].startswith(b'{"id": 1, "op": "hook", "args": {"agent": "claude-code"')
    assert json.loads(r.stdout) == {
        "hookSpecificOutput": {"hookEventName": "SessionStart", "additionalContext": briefing}
    }
    assert r.stdout.count(b"\n") == 1
    assert not hook_log_path(home).exists()  # a success logs nothing


def test_user_prompt_submit_prints_recalled_context(home: Path) -> None:
    with stand_in(home, _result("recalled: tax is 20%")) as daemon:
        r = hook(home, PROMPT)
    assert r.returncode == 0
    assert json.loads(daemon.received[0])["args"]["payload"] == PROMPT
    assert json.loads(r.stdout)["hookSpecificOutput"] == {
        "hookEventName": "UserPromptSubmit",
        "additionalContext": "recalled: tax is 20%",
    }


@pytest.mark.parametrize("context", [None, "", "ignored for this event"])
def test_other_events_and_empty_context_print_nothing(home: Path, context: str | None) -> None:
    with stand_in(home, _result(context)) as daemon:
        r = hook(home, TOOL)
        nothing = hook(home, _payload("SessionStart", source="resume")) if not context else None
    assert r.returncode == 0 and r.stdout == b"" and r.stderr == b""
    assert json.loads(daemon.received[0])["args"]["payload"] == TOOL
    if nothing is not None:
        assert nothing.returncode == 0 and nothing.stdout == b""
    assert not hook_log_path(home).exists()


def test_non_ascii_and_lone_surrogates_reach_the_daemon_intact(home: Path) -> None:
    payload = _payload("UserPromptSubmit", prompt="Größe ✓ \ud800 end")
    with stand_in(home, _result(None)) as daemon:
        r = hook(home, json.dumps(payload).encode())
    assert r.returncode == 0
    assert json.loads(daemon.received[0])["args"]["payload"] == payload


def test_the_hook_path_imports_no_engine_adapter_or_driver(home: Path) -> None:
    probe = (
        "import json, sys, scribe_cli\n"
        "rc = scribe_cli.main(['hook', 'claude-code'])\n"
        "heavy = {'engine', 'adapters', 'trio', 'rich', 'psycopg', 'msgspec', 'tomllib'}\n"
        "sys.stderr.write(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
        "sys.exit(rc)\n"
    )
    with stand_in(home, _result("briefing")):
        r = subprocess.run(
            [sys.executable, "-c", probe],
            input=json.dumps(SESSION_START).encode(),
            env=_env(home),
            capture_output=True,
            timeout=ENDS_WITHIN,
            check=False,
        )
    assert r.returncode == 0 and b"briefing" in r.stdout
    assert json.loads(r.stderr) == []


# ------------------------------------------------------------------------------- failing open


def _fails_open(r: subprocess.CompletedProcess[bytes], home: Path, why: str) -> None:
    assert r.returncode == 0
    assert r.stdout == b""
    assert r.stderr == b""
    lines = _log_lines(home)
    assert len(lines) == 1 and why in lines[0], lines
    _assert_private(home)


def test_no_daemon(home: Path) -> None:
    _fails_open(hook(home, SESSION_START), home, "no daemon answers")


def test_a_daemon_that_never_answers_is_left_at_the_deadline(home: Path) -> None:
    with stand_in(home, lambda line: None) as daemon:
        r = hook(home, TOOL)  # subprocess.run's timeout (10 s) fails the test if it hangs
        slow_start = hook(home, SESSION_START)
    assert len(daemon.received) == 2
    assert r.returncode == 0 and r.stdout == b""
    assert slow_start.returncode == 0 and slow_start.stdout == b""
    lines = _log_lines(home)
    assert len(lines) == 2 and all("timed out waiting for the daemon" in line for line in lines)


@pytest.mark.parametrize("rid", [1, None])  # None: the daemon could not read the request's id
def test_an_error_answer(home: Path, rid: int | None) -> None:
    def refuse(line: bytes) -> bytes:
        error = {"type": "ControlProtocolError", "message": "unknown op 'hook'\x1b[2J"}
        return json.dumps({"id": rid, "ok": False, "error": error}).encode() + b"\n"

    with stand_in(home, refuse):
        r = hook(home, SESSION_START)
    _fails_open(r, home, "the daemon refused: ControlProtocolError: unknown op 'hook'\\x1b[2J")


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (b"\xff\xfe not json\n", "the answer is not JSON"),
        (b"[1, 2]\n", "not a response"),
        (b'{"id": 2, "ok": true, "result": {"additional_context": "x"}}\n', "request 1"),
        (b'{"id": 1, "ok": true, "result": {"additional_context": 5}}\n', "not a string"),
        (b'{"id": 1, "ok": "yes"}\n', "not a response"),
        (b'{"id": 1, "ok": true, "result": {"additional_context": "half', "closed the connection"),
        (b"", "closed the connection"),
        (b"x" * (1 << 21), "longer than"),
    ],
)
def test_a_garbage_answer(home: Path, answer: bytes, why: str) -> None:
    with stand_in(home, lambda line: answer):
        r = hook(home, SESSION_START)
    _fails_open(r, home, why)


@pytest.mark.parametrize(
    ("stdin", "why"),
    [
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b'{"hook_event_name": NaN}', "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b'["SessionStart"]', "not an object"),
        (b'{"session_id": "s"}', "no hook_event_name"),
        (b'{"hook_event_name": 3}', "no hook_event_name"),
    ],
)
def test_a_bad_payload_is_not_sent(home: Path, stdin: bytes, why: str) -> None:
    with stand_in(home, _result("never shown")) as daemon:
        r = hook(home, stdin)
    assert daemon.received == []
    _fails_open(r, home, why)


def test_stdin_left_open_is_given_up_at_the_deadline(home: Path) -> None:
    with stand_in(home, _result("never shown")) as daemon:
        process = subprocess.Popen(
            [str(SCRIBE), "hook", "claude-code"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(home),
        )
        assert process.stdin is not None
        process.stdin.write(json.dumps(PROMPT).encode())  # and never closed
        process.stdin.flush()
        try:
            process.wait(timeout=ENDS_WITHIN)  # stdin still open: communicate() would close it
        finally:
            process.kill()
            process.wait()
        assert process.stdout is not None and process.stderr is not None
        out, err = process.stdout.read(), process.stderr.read()
        for stream in (process.stdin, process.stdout, process.stderr):
            stream.close()
    assert daemon.received == []
    _fails_open(subprocess.CompletedProcess([], process.returncode, out, err), home, "stdin")


def test_five_mebibytes_of_stdin(home: Path) -> None:
    big = _payload("PostToolUse", tool_name="Read", tool_response="y" * (5 << 20))
    with stand_in(home, _result(None)) as daemon:
        r = hook(home, big)
    assert daemon.received == []
    _fails_open(r, home, "payload larger than 4194304 bytes")


def test_a_large_tool_output_is_cut_to_fit_the_daemon_line(home: Path) -> None:
    big = _payload(
        "PostToolUse",
        tool_name="Bash",
        tool_input={"command": "cat big.log"},
        tool_response={"stdout": "y" * (3 << 20), "stderr": "e" * 100},
    )
    with stand_in(home, _result(None)) as daemon:
        r = hook(home, big)
    assert r.returncode == 0 and r.stdout == b""
    assert MAX_REQUEST_LINE < adapters.MAX_CONTROL_LINE
    [line] = daemon.received
    assert len(line) < MAX_REQUEST_LINE
    sent = json.loads(line)["args"]["payload"]
    assert sent["tool_input"] == {"command": "cat big.log"}  # short strings are kept whole
    assert sent["tool_response"]["stderr"] == "e" * 100
    assert sent["tool_response"]["stdout"].startswith("y" * 1000)
    assert sent["tool_response"]["stdout"].endswith("more characters]")


def test_a_home_that_does_not_exist_gets_a_private_log(home: Path) -> None:
    missing = home / "not" / "yet"
    _fails_open(hook(missing, PROMPT), missing, "no daemon answers")
    assert stat.S_IMODE(missing.stat().st_mode) == 0o700


def test_debug_prints_the_reason_on_stderr(home: Path) -> None:
    r = hook(home, TOOL, SCRIBE_HOOK_DEBUG="1")
    assert r.returncode == 0 and r.stdout == b""
    assert b"scribe hook:" in r.stderr and b"no daemon answers" in r.stderr


def test_a_broken_config_file_still_fails_open(home: Path) -> None:
    config = home / "config.toml"
    config.write_text("home = = 'x'\n")
    env = {k: v for k, v in _env(home).items() if k != "SCRIBE_HOME"}
    env |= {"SCRIBE_CONFIG": str(config), "XDG_DATA_HOME": str(home / "data")}
    r = subprocess.run(
        [str(SCRIBE), "hook", "claude-code"],
        input=json.dumps(PROMPT).encode(),
        env=env,
        capture_output=True,
        timeout=ENDS_WITHIN,
        check=False,
    )
    assert r.returncode == 0 and r.stdout == b""
    (line,) = _log_lines(home / "data" / "scribe")
    assert "cannot find the home" in line and "not valid TOML" in line


def test_the_home_comes_from_the_config_file(home: Path) -> None:
    target = home / "h"
    target.mkdir(mode=0o700)
    config = home / "config.toml"
    config.write_text(f"home = {json.dumps(str(target))}\nfeed_port = 1\n")
    env = {k: v for k, v in _env(home).items() if k != "SCRIBE_HOME"}
    env |= {"SCRIBE_CONFIG": str(config)}
    with stand_in(target, _result("from the file's home")):
        r = subprocess.run(
            [str(SCRIBE), "hook", "claude-code"],
            input=json.dumps(SESSION_START).encode(),
            env=env,
            capture_output=True,
            timeout=ENDS_WITHIN,
            check=False,
        )
    assert b"from the file's home" in r.stdout


# ------------------------------------------------------------------------------- the log


def test_the_log_escapes_what_it_quotes_and_stays_private(home: Path) -> None:
    payload = _payload("UserPromptSubmit", prompt="p")
    payload["session_id"] = "evil\x1b]0;owned\x07\n2026 forged line\u202e"
    hook(home, payload)
    (line,) = _log_lines(home)
    assert "evil\\x1b]0;owned\\x07\\n2026 forged line\\u202e" in line
    hook_log_path(home).chmod(0o644)
    hook(home, payload)
    _assert_private(home)
    assert len(_log_lines(home)) == 2


def test_the_log_keeps_its_newest_half_past_one_mebibyte(home: Path) -> None:
    log = hook_log_path(home)
    for i in range(3000):
        assert write_hook_log(home, f"line {i} " + "x" * 500) is None
    assert log.stat().st_size <= MAX_HOOK_LOG
    r = hook(home, TOOL)
    assert r.returncode == 0
    lines = _log_lines(home)
    assert log.stat().st_size <= MAX_HOOK_LOG
    assert "no daemon answers" in lines[-1] and "line 2999 " in lines[-2]
    assert "line 0 " not in lines[0] and all(" pid=" in line for line in lines)
    _assert_private(home)


def test_a_log_that_is_not_a_regular_file_is_left_alone(home: Path) -> None:
    logs = home / "logs"
    logs.mkdir(mode=0o700)
    os.mkfifo(logs / "hooks.log")
    r = hook(home, TOOL, SCRIBE_HOOK_DEBUG="1")
    assert r.returncode == 0 and r.stdout == b""
    assert b"not logged" in r.stderr
    (logs / "hooks.log").unlink()
    outside = home / "outside"
    (logs / "hooks.log").symlink_to(outside)
    assert hook(home, TOOL).returncode == 0
    assert not outside.exists()


def test_log_escaping_matches_engine_visible() -> None:
    samples = [chr(c) for c in range(0x2100)] + ["\ud800", "\udfff", "\u202e", "\u2069", "\x9f"]
    for s in samples:
        assert escape_text(f"a{s}b") == visible(f"a{s}b"), repr(s)


# ------------------------------------------------------------------------------- the front door


def test_other_commands_go_through_the_front_door(home: Path) -> None:
    version = subprocess.run(
        [str(SCRIBE), "--version"], env=_env(home), capture_output=True, timeout=60, check=False
    )
    assert version.returncode == 0 and version.stdout.startswith(b"scribe ")
    listing = subprocess.run(
        [str(SCRIBE), "list"], env=_env(home), capture_output=True, timeout=60, check=False
    )
    assert listing.returncode == 3, listing.stderr
    assert b"no scribe daemon is running" in listing.stderr


def test_hook_usage_never_exits_2(home: Path) -> None:
    for argv in ([], ["codex"], ["claude-code", "extra"]):
        r = subprocess.run(
            [str(SCRIBE), "hook", *argv],
            env=_env(home),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == 1 and b"usage: scribe hook AGENT" in r.stderr
    r = subprocess.run(
        [str(SCRIBE), "hook", "--help"],
        env=_env(home),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0 and b"claude-code" in r.stdout
