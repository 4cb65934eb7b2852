"""The dashboard's JSON routes over the daemon's control operations, for a signed-in page.

Each route runs one control operation (``list``, ``summary``, ``context``, ``worklog``, ``recall``,
``rehydrate``) through the callable the daemon gives the dashboard (the same handler the control
socket and the MCP endpoint use), with arguments read from the query string:

``/sessions.json?state=a,b&tag=x,y&repo=/abs/path&after=<id>&limit=<n>``, ``/summary.json?session=<ref>``,
``/context.json?session=<ref>&role=<role>``, ``/worklog.json?session=<ref>&since=<seq>&before=<seq>&limit=<n>``,
``/recall.json?query=<text>&k=<n>&session=<ref>&kind=<kind>`` and
``/rehydrate.json?query=<text>&budget=<tokens>&role=<role>&session=<ref>``.

Every parameter is bounded here with the limits of :mod:`engine._core._limits` (``QUERY_MAX``,
``NAME_MAX``, ``RECALL_MAX``, ``REHYDRATE_BUDGET_MAX`` ...) before the operation's own checks run;
an unknown, repeated, too long or malformed parameter gets 400 with ``{"error": "bad_request",
"message"}``, an unknown session 404, a failure of the daemon 503.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import engine

from ..control._protocol import DaemonError

__all__ = ["CONTROL_ROUTES", "ControlCall", "control_answer"]

#: Runs a control operation: ``(op, args)`` to its JSON-ready answer; raises
#: :class:`~adapters.DaemonError` when the handler refuses.
ControlCall = Callable[[str, Mapping[str, Any]], Awaitable[Any]]

#: The longest query string a route reads, in bytes (a percent-encoded query at its limit fits).
MAX_QUERY_BYTES: Final = 12 * engine.QUERY_MAX
_BAD_INPUT: Final = frozenset(
    {"ControlProtocolError", "InvalidArgumentError", "FieldLimitError", "ControlLimitError"}
)


@dataclass(frozen=True, slots=True)
class _Param:
    """One query parameter: its control argument, its shape and its limit (characters of text
    or of each list item; the largest integer)."""

    arg: str
    shape: Literal["text", "list", "int"]
    limit: int


_SESSION: Final = _Param("session", "text", engine.NAME_MAX)
_ROLE: Final = _Param("role", "text", engine.NAME_MAX)
_QUERY: Final = _Param("query", "text", engine.QUERY_MAX)

#: Each route: its control operation and the query parameters it takes.
CONTROL_ROUTES: Final[Mapping[str, tuple[str, Mapping[str, _Param]]]] = {
    "/sessions.json": (
        "list",
        {
            "state": _Param("states", "list", engine.NAME_MAX),
            "tag": _Param("tags", "list", engine.TAG_MAX),
            "repo": _Param("repo", "text", engine.PATH_MAX),
            "after": _Param("after", "text", engine.NAME_MAX),
            "limit": _Param("limit", "int", engine.PAGE_MAX),
        },
    ),
    "/summary.json": ("summary", {"session": _SESSION}),
    "/context.json": ("context", {"session": _SESSION, "role": _ROLE}),
    "/worklog.json": (
        "worklog",
        {
            "session": _SESSION,
            "since": _Param("since", "int", engine.INT_MAX),
            "before": _Param("before", "int", engine.INT_MAX),
            "limit": _Param("limit", "int", engine.LIMIT_MAX),
        },
    ),
    "/recall.json": (
        "recall",
        {
            "query": _QUERY,
            "k": _Param("k", "int", engine.RECALL_MAX),
            "session": _SESSION,
            "kind": _Param("kind", "text", engine.NAME_MAX),
        },
    ),
    "/rehydrate.json": (
        "rehydrate",
        {
            "query": _QUERY,
            "budget": _Param("budget", "int", engine.REHYDRATE_BUDGET_MAX),
            "role": _ROLE,
            "session": _SESSION,
        },
    ),
}


class _BadRequest(Exception):
    pass


def _value(key: str, raw: str, param: _Param) -> Any:
    if param.shape == "int":
        if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(param.limit)):
            raise _BadRequest(f"{key} must be an integer from 0 to {param.limit}")
        number = int(raw)
        if number > param.limit:
            raise _BadRequest(f"{key} must be an integer from 0 to {param.limit}")
        return number
    items = raw.split(",") if param.shape == "list" else [raw]
    if len(items) > engine.LIST_MAX:
        raise _BadRequest(f"{key} has {len(items)} items; the limit is {engine.LIST_MAX}")
    for item in items:
        if not item:
            raise _BadRequest(f"{key} must not be empty")
        try:
            engine.check_length(key, item, param.limit)
        except engine.FieldLimitError as exc:
            raise _BadRequest(str(exc)) from None
    return items if param.shape == "list" else raw


def _arguments(query: bytes, params: Mapping[str, _Param]) -> dict[str, Any]:
    if len(query) > MAX_QUERY_BYTES:
        raise _BadRequest(f"the query string is longer than {MAX_QUERY_BYTES} bytes")
    try:
        pairs = urllib.parse.parse_qsl(
            query.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=bool(query),
            errors="strict",
            max_num_fields=2 * len(params),
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise _BadRequest(f"the query string is malformed: {exc}") from None
    args: dict[str, Any] = {}
    for key, raw in pairs:
        param = params.get(key)
        if param is None:
            known = ", ".join(params) or "none"
            raise _BadRequest(f"unknown parameter {key[:50]!r}; parameters: {known}")
        if param.arg in args:
            raise _BadRequest(f"{key} is given more than once")
        args[param.arg] = _value(key, raw, param)
    return args


def _refused(exc: DaemonError) -> tuple[int, dict[str, Any]]:
    if exc.type in _BAD_INPUT:
        return 400, {"error": "bad_request", "message": exc.message}
    if exc.type.endswith("NotFoundError"):
        return 404, {"error": "not_found", "message": exc.message}
    return 503, {"error": "unavailable", "message": f"{exc.type}: {exc.message}"}


async def control_answer(
    call: ControlCall | None, path: str, query: bytes
) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, JSON body)`` answering the route ``path`` (one of :data:`CONTROL_ROUTES`)
    with ``query`` (the raw query string) through ``call`` (None: 503, the daemon serves none).

    Cancellation: the operation is cancelled as its handler is (nothing is answered).
    """
    op, params = CONTROL_ROUTES[path]
    try:
        args = _arguments(query, params)
    except _BadRequest as exc:
        return 400, {"error": "bad_request", "message": str(exc)}
    if call is None:
        return 503, {"error": "unavailable", "message": "this dashboard runs no control handler"}
    try:
        result = await call(op, args)
    except DaemonError as exc:
        return _refused(exc)
    return 200, result if isinstance(result, dict) else {"result": result}
