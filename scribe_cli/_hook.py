"""``scribe hook claude-code``: one Claude Code hook event handed to the daemon, fast and fail-open.

Claude Code runs the hook on every prompt and tool call with the event as a JSON object on stdin
(``session_id``, ``transcript_path``, ``cwd``, ``hook_event_name`` and the event's own fields). This
module reads it (at most :data:`MAX_HOOK_INPUT` bytes), sends one control request on the daemon's
socket and reads one response line::

    {"id": 1, "op": "hook", "args": {"agent": "claude-code", "payload": <the object>}}
    {"id": 1, "ok": true, "result": {"additional_context": "..." or null}}
    {"id": 1, "ok": false, "error": {"type": "...", "message": "..."}}

For ``SessionStart`` and ``UserPromptSubmit`` a non-empty ``additional_context`` is printed as
``{"hookSpecificOutput": {"hookEventName": ..., "additionalContext": ...}}``. The exit status is
always 0. Every wait (stdin, connect, send, receive) ends by one deadline counted from the start:
:data:`SESSION_START_DEADLINE` for ``SessionStart``, :data:`EVENT_DEADLINE` for the rest, both well
below the 10 s the installed hooks give Claude Code. Any failure (no daemon, a timeout, a refusal, a
bad payload or answer, too much input, a closed stdout) prints nothing on stdout and writes one line
to ``<home>/logs/hooks.log``; ``SCRIBE_HOOK_DEBUG=1`` prints it on stderr too.

Imports only the standard library (neither ``engine`` nor ``adapters``): Python's start is most of
the hook's time.
"""

from __future__ import annotations

import _socket  # socket.py builds enums of every constant at import: milliseconds the hook has not
import json
import os
import select
import sys
import time

from ._home import HomeConfigError, default_home, resolve_home, socket_path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

if TYPE_CHECKING:  # no typing at run time: the hook command's start counts
    from collections.abc import Mapping
    from typing import Any, Final

__all__ = [
    "CONTEXT_EVENTS",
    "EVENT_DEADLINE",
    "HOOK_AGENTS",
    "MAX_HOOK_INPUT",
    "MAX_HOOK_RESPONSE",
    "MAX_REQUEST_LINE",
    "SESSION_START_DEADLINE",
    "HookFailure",
    "hook_request_line",
    "run_hook",
]

#: The agents ``scribe hook`` speaks for.
HOOK_AGENTS: Final = ("claude-code",)
#: The most bytes read from stdin; a larger payload is refused (fail-open).
MAX_HOOK_INPUT: Final = 4 << 20
#: The longest response line read from the daemon, in bytes.
MAX_HOOK_RESPONSE: Final = 1 << 20
#: The longest request line sent, in bytes: the daemon's control line limit, less a margin.
MAX_REQUEST_LINE: Final = (1 << 20) - 1024
_CUT_FIRST: Final = 64 * 1024
_CUT_LAST: Final = 256
#: Seconds from the start to the answer for ``SessionStart`` (the briefing takes a moment).
SESSION_START_DEADLINE: Final = 4.0
#: Seconds from the start to the answer for every other event (and for reading stdin).
EVENT_DEADLINE: Final = 1.5
#: The events whose ``additional_context`` reaches the agent.
CONTEXT_EVENTS: Final = frozenset({"SessionStart", "UserPromptSubmit"})
#: The most characters of an event name.
_EVENT_MAX: Final = 100
_READ: Final = 65536


class HookFailure(Exception):
    """Why one hook call handed nothing to the agent (logged, never shown to it)."""


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise HookFailure("timed out")
    return left


def _read_input(fd: int, deadline: float) -> bytes:
    """stdin up to its end, at most :data:`MAX_HOOK_INPUT` bytes, by ``deadline``."""
    chunks: list[bytes] = []
    size = 0
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        try:
            left = _remaining(deadline)
        except HookFailure:
            raise HookFailure("timed out reading the payload on stdin") from None
        if not poller.poll(max(1, int(left * 1000))):
            continue
        chunk = os.read(fd, min(_READ, MAX_HOOK_INPUT + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_HOOK_INPUT:
            raise HookFailure(f"payload larger than {MAX_HOOK_INPUT} bytes")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_payload(data: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(data, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise HookFailure(f"the payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise HookFailure(f"the payload is a JSON {type(payload).__name__}, not an object")
    event = payload.get("hook_event_name")
    if not isinstance(event, str) or not 0 < len(event) <= _EVENT_MAX:
        raise HookFailure("the payload has no hook_event_name string")
    return payload


def _encode(request: Mapping[str, Any]) -> bytes:
    try:
        return (json.dumps(request, ensure_ascii=False) + "\n").encode()
    except UnicodeEncodeError:
        return (json.dumps(request) + "\n").encode()


def _cut_strings(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        if len(value) <= limit:
            return value
        return value[:limit] + f"… [cut: {len(value) - limit} more characters]"
    if isinstance(value, dict):
        return {k: _cut_strings(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_strings(v, limit) for v in value]
    return value


def hook_request_line(agent: str, payload: Mapping[str, Any]) -> bytes:
    """The one request line the hook sends:
    ``{"id": 1, "op": "hook", "args": {"agent": <agent>, "payload": <payload>}}`` and a newline
    (UTF-8; a payload holding lone surrogates is sent with ``\\u`` escapes instead).

    The line stays within :data:`MAX_REQUEST_LINE` (the daemon's control line limit): when the
    payload is larger, its longest strings (a tool's whole output, say) are cut, shorter and
    shorter, each with a note of how much was cut. The transcript keeps the whole text."""
    request: dict[str, Any] = {"id": 1, "op": "hook", "args": {"agent": agent, "payload": payload}}
    line = _encode(request)
    limit = _CUT_FIRST
    while len(line) > MAX_REQUEST_LINE and limit >= _CUT_LAST:
        request["args"]["payload"] = _cut_strings(payload, limit)
        line = _encode(request)
        limit //= 4
    if len(line) > MAX_REQUEST_LINE:
        raise HookFailure(f"the payload does not fit in {MAX_REQUEST_LINE} bytes")
    return line


def _exchange(path: str, line: bytes, deadline: float) -> bytes:
    """Connect, send ``line`` and read one response line, all by ``deadline``."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        s.settimeout(_remaining(deadline))
        try:
            s.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise HookFailure(f"no daemon answers on {path} ({exc.strerror})") from None
        s.settimeout(_remaining(deadline))
        s.sendall(line)
        buffer = bytearray()
        while b"\n" not in buffer:
            s.settimeout(_remaining(deadline))
            chunk = s.recv(_READ)
            if not chunk:
                raise HookFailure("the daemon closed the connection without an answer")
            buffer += chunk
            if len(buffer) > MAX_HOOK_RESPONSE:
                raise HookFailure(f"the answer is longer than {MAX_HOOK_RESPONSE} bytes")
        return bytes(buffer[: buffer.index(b"\n")])
    except TimeoutError:
        raise HookFailure("timed out waiting for the daemon") from None
    finally:
        s.close()


def _context_of(answer: bytes) -> str | None:
    """``additional_context`` of a success answer."""
    try:
        response = json.loads(answer, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise HookFailure(f"the answer is not JSON: {answer[:200]!r}") from None
    if not isinstance(response, dict):
        raise HookFailure(f"the answer is not a response: {answer[:200]!r}")
    error = response.get("error")
    if response.get("ok") is False and isinstance(error, dict):
        # a refusal, whatever its id (one the daemon could not read is answered with none)
        raise HookFailure(
            f"the daemon refused: {error.get('type', 'Error')}: {error.get('message', '')}"
        )
    if response.get("ok") is not True or response.get("id") != 1:
        raise HookFailure(f"the answer is not a response to request 1: {answer[:200]!r}")
    result = response.get("result")
    context = result.get("additional_context") if isinstance(result, dict) else None
    if context is not None and not isinstance(context, str):
        raise HookFailure(f"additional_context is a {type(context).__name__}, not a string")
    return context


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _home(environ: Mapping[str, str]) -> tuple[str, str | None]:
    try:
        return resolve_home(environ), None
    except (HomeConfigError, OSError, ValueError) as exc:
        return default_home(environ), f"cannot find the home: {exc}"


def run_hook(
    agent: str,
    *,
    environ: Mapping[str, str] | None = None,
    stdin_fd: int = 0,
    stdout_fd: int = 1,
) -> int:
    """Hand the hook event on ``stdin_fd`` to the daemon and print what the agent should see on
    ``stdout_fd``; 0, always (see the module's docstring). Synchronous: every wait is bounded by
    the event's deadline, and an interrupt (KeyboardInterrupt) ends it like any failure."""
    start = time.monotonic()
    env = os.environ if environ is None else environ
    home, failure = _home(env)
    event = "?"
    session = "?"
    try:
        if agent not in HOOK_AGENTS:
            raise HookFailure(f"unknown agent {agent!r}")
        if failure is not None:
            raise HookFailure(failure)
        data = _read_input(stdin_fd, start + EVENT_DEADLINE)
        payload = _parse_payload(data)
        event = payload["hook_event_name"]
        session = str(payload.get("session_id", "?"))[:200]
        limit = SESSION_START_DEADLINE if event == "SessionStart" else EVENT_DEADLINE
        answer = _exchange(socket_path(home), hook_request_line(agent, payload), start + limit)
        context = _context_of(answer)
        if context and event in CONTEXT_EVENTS:
            output = {"hookSpecificOutput": {"hookEventName": event, "additionalContext": context}}
            _write_all(stdout_fd, (json.dumps(output) + "\n").encode())
        return 0
    except (HookFailure, OSError, ValueError, KeyboardInterrupt) as exc:
        reason = str(exc) if isinstance(exc, HookFailure) else f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # fail open, whatever it was
        reason = f"unexpected {type(exc).__name__}: {exc}"
    from ._hook_log import escape_text, write_hook_log

    message = (
        f"agent={escape_text(agent)[:50]} event={escape_text(event)[:_EVENT_MAX]} "
        f"session={escape_text(session)} "
        f"ms={(time.monotonic() - start) * 1000:.0f} {reason}"
    )
    not_logged = write_hook_log(home, message)
    if env.get("SCRIBE_HOOK_DEBUG") == "1":
        extra = f" (not logged: {not_logged})" if not_logged else ""
        try:
            sys.stderr.write(f"scribe hook: {escape_text(message)}{extra}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    return 0
