"""The daemon's control protocol: JSON lines over a local socket, validated. Imports no trio.

A request is one line ``{"id": 1, "op": "start", "args": {...}}``; its response is one line
``{"id": 1, "ok": true, "result": ...}`` or ``{"id": 1, "ok": false, "error": {"type": ..., "message":
...}}``. Every op's arguments are checked against :data:`OPS` (names, types, required ones) before the
daemon acts on them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from engine._core._errors import ScribeError

__all__ = [
    "MAX_LINE",
    "OPS",
    "Arg",
    "ControlProtocolError",
    "DaemonError",
    "DaemonNotRunningError",
    "Request",
    "decode_response",
    "encode_error",
    "encode_request",
    "encode_result",
    "parse_request",
]

#: The longest line either side accepts, in bytes.
MAX_LINE: Final = 1 << 20


class ControlProtocolError(ScribeError, ValueError):
    """A control message is malformed: not JSON, an unknown op, a missing or mistyped argument."""


class DaemonNotRunningError(ScribeError):
    """No scribe daemon answers on the control socket."""


class DaemonError(ScribeError):
    """The daemon refused or failed a request.

    Attributes:
        type: the name of the error the daemon raised (``SessionNotFoundError`` ...).
        message: its message.
    """

    def __init__(self, type: str, message: str) -> None:
        super().__init__(f"{message} ({type})" if message else type)
        self.type = type
        self.message = message


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of an op.

    Attributes:
        kind: ``str``, ``int``, ``number``, ``bool``, ``strs`` (a list of strings).
        required: must be given.
        nullable: may be null.
    """

    kind: str
    required: bool = False
    nullable: bool = False


_S = Arg("str")
_REQ_S = Arg("str", required=True)
_STRS = Arg("strs")
_SESSION = {"session": _REQ_S}

#: Every op and its arguments.
OPS: Final[Mapping[str, Mapping[str, Arg]]] = {
    "ping": {},
    "status": {},
    "start": {
        "repo": _REQ_S,
        "name": _S,
        "backlog_id": _S,
        "kind": _S,
        "priority": _S,
        "tags": _STRS,
        "description": _S,
        "parent": _S,
        "related": _STRS,
        "idle_timeout": Arg("number", nullable=True),
        "files": _STRS,
    },
    "stop": _SESSION,
    "list": {"states": _STRS, "tags": _STRS},
    "append": {"session": _REQ_S, "text": _REQ_S},
    "tag": {"session": _REQ_S, "tags": Arg("strs", required=True)},
    "untag": {"session": _REQ_S, "tags": Arg("strs", required=True)},
    "info": _SESSION,
    "context": {"session": _REQ_S, "role": _S},
    "worklog": {"session": _REQ_S, "limit": Arg("int"), "markdown": Arg("bool")},
    "summary": _SESSION,
    "cleanup": {"days": Arg("number", required=True), "states": _STRS},
    "validate": {},
}


@dataclass(frozen=True, slots=True)
class Request:
    """A validated request.

    Attributes:
        id: the caller's id for it (echoed in the response).
        op: what to do.
        args: its arguments (only known names, of the declared types).
    """

    id: int | str | None
    op: str
    args: Mapping[str, Any]


def _check(op: str, name: str, spec: Arg, value: Any) -> Any:
    if value is None:
        if spec.nullable:
            return None
        raise ControlProtocolError(f"{op}: argument {name!r} must not be null")
    k = spec.kind
    ok = (
        (k == "str" and isinstance(value, str))
        or (k == "int" and isinstance(value, int) and not isinstance(value, bool))
        or (
            k == "number"
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        )
        or (k == "bool" and isinstance(value, bool))
        or (k == "strs" and isinstance(value, list) and all(isinstance(v, str) for v in value))
    )
    if not ok:
        want = {"strs": "a list of strings", "number": "a finite number"}.get(k, f"a {k}")
        raise ControlProtocolError(f"{op}: argument {name!r} must be {want}, not {value!r}")
    return value


def parse_request(line: bytes | str) -> Request:
    """Validate one request line.

    Raises:
        ControlProtocolError: it is not a valid request.
    """
    if len(line) > MAX_LINE:
        raise ControlProtocolError(f"request longer than {MAX_LINE} bytes")
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlProtocolError(f"request is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ControlProtocolError("a request must be a JSON object")
    rid = data.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, int | str)):
        raise ControlProtocolError("id must be an integer or a string")
    extra = set(data) - {"id", "op", "args"}
    if extra:
        raise ControlProtocolError(f"unknown request fields {sorted(extra)}")
    op = data.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise ControlProtocolError(f"unknown op {op!r}; ops: {', '.join(OPS)}")
    raw = data.get("args", {})
    if not isinstance(raw, dict):
        raise ControlProtocolError("args must be a JSON object")
    spec = OPS[op]
    unknown = set(raw) - set(spec)
    if unknown:
        raise ControlProtocolError(f"{op}: unknown arguments {sorted(unknown)}")
    args: dict[str, Any] = {}
    for name, arg in spec.items():
        if name in raw:
            args[name] = _check(op, name, arg, raw[name])
        elif arg.required:
            raise ControlProtocolError(f"{op}: argument {name!r} is required")
    return Request(rid, op, args)


def _line(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode() + b"\n"


def encode_request(rid: int | str | None, op: str, args: Mapping[str, Any]) -> bytes:
    """One request line."""
    return _line({"id": rid, "op": op, "args": dict(args)})


def encode_result(rid: int | str | None, result: Any) -> bytes:
    """One success response line."""
    return _line({"id": rid, "ok": True, "result": result})


def encode_error(rid: int | str | None, exc: BaseException) -> bytes:
    """One error response line naming the error's type."""
    message = str(exc)
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        inner = exc.exceptions[0]
        return encode_error(rid, inner)
    return _line(
        {"id": rid, "ok": False, "error": {"type": type(exc).__name__, "message": message}}
    )


def decode_response(line: bytes) -> tuple[int | str | None, Any]:
    """The id and result of a response line.

    Raises:
        DaemonError: the response reports an error.
        ControlProtocolError: the line is not a response.
    """
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlProtocolError(f"response is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("ok"), bool):
        raise ControlProtocolError("malformed response")
    if data["ok"]:
        return data.get("id"), data.get("result")
    err = data.get("error")
    if not isinstance(err, dict):
        raise ControlProtocolError("malformed error response")
    raise DaemonError(str(err.get("type", "Error")), str(err.get("message", "")))
