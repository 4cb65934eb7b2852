"""The sessions' resources: a worklog as markdown and a summary as JSON, read from the daemon.

A worklog resource holds the newest :data:`WORKLOG_ENTRIES` entries (the tool ``get_worklog``
pages further back); the live sessions are listed, two resources each.
"""

from __future__ import annotations

import json
from typing import Any, Final

import mcp_types as types
from mcp.shared.exceptions import MCPError

import engine

from ._backend import McpBackend
from ._errors import describe_failure
from ._uris import SUMMARY_TEMPLATE, WORKLOG_TEMPLATE, ResourceUri

__all__ = ["WORKLOG_ENTRIES", "read_resource", "resource_list", "resource_templates"]

#: Entries a worklog resource holds (the newest).
WORKLOG_ENTRIES: Final = 500
#: Sessions whose resources are listed (the oldest live ones first).
LISTED_SESSIONS: Final = 100
_LIVE: Final = ["starting", "active", "idle"]


def resource_templates() -> list[types.ResourceTemplate]:
    """The two templates."""
    return [
        types.ResourceTemplate(
            name="worklog",
            title="Session worklog",
            uri_template=WORKLOG_TEMPLATE,
            description="A session's worklog as markdown: changes, commits, notes, its summary.",
            mime_type="text/markdown",
        ),
        types.ResourceTemplate(
            name="summary",
            title="Session summary",
            uri_template=SUMMARY_TEMPLATE,
            description="A session's newest summary, as JSON (null: none yet).",
            mime_type="application/json",
        ),
    ]


async def _call(backend: McpBackend, what: str, op: str, args: dict[str, Any]) -> Any:
    try:
        return await backend.call(op, args)
    except Exception as exc:
        message = describe_failure(what, exc)
        if message is None:
            raise
        raise MCPError(types.INVALID_PARAMS if "NotFound" in message else types.INTERNAL_ERROR,
                       message) from None


async def resource_list(backend: McpBackend) -> types.ListResourcesResult:
    """The resources of the live sessions.

    Cancellation: nothing is listed.
    """
    page = await _call(
        backend, "resources/list", "list", {"states": _LIVE, "limit": LISTED_SESSIONS}
    )
    out: list[types.Resource] = []
    for s in page["sessions"]:
        name = engine.visible(str(s["name"]))
        out.append(
            types.Resource(
                name=f"worklog of {name}",
                uri=str(ResourceUri(s["id"], "worklog")),
                mime_type="text/markdown",
            )
        )
        out.append(
            types.Resource(
                name=f"summary of {name}",
                uri=str(ResourceUri(s["id"], "summary")),
                mime_type="application/json",
            )
        )
    return types.ListResourcesResult(resources=out)


async def read_resource(backend: McpBackend, uri: ResourceUri) -> types.ReadResourceResult:
    """The resource's current text.

    Raises:
        MCPError: the session is unknown, or the daemon cannot be reached (the message says).

    Cancellation: nothing is read.
    """
    what = f"reading {uri}"
    if uri.kind == "worklog":
        answer = await _call(
            backend,
            what,
            "worklog",
            {"session": uri.session, "limit": WORKLOG_ENTRIES, "markdown": True},
        )
        text, mime = str(answer.get("markdown") or ""), "text/markdown"
    else:
        answer = await _call(backend, what, "summary", {"session": uri.session})
        text, mime = json.dumps(answer["summary"], ensure_ascii=False, indent=1), "application/json"
    return types.ReadResourceResult(
        contents=[types.TextResourceContents(uri=str(uri), mime_type=mime, text=text)]
    )
