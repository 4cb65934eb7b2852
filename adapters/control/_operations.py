"""The control operations: one msgspec struct per operation, the arguments it takes. Imports no trio.

Every user-supplied field has a limit, taken from the engine's one definition of them
(:mod:`engine._core._limits`): :data:`~engine.NAME_MAX` for names and ids, :data:`~engine.TAG_MAX`
for tags, :data:`~engine.DESCRIPTION_MAX` for descriptions, :data:`~engine.NOTE_MAX` for notes,
:data:`~engine.PATH_MAX` for paths, :data:`~engine.BACKLOG_ID_PATTERN` for backlog ids,
:data:`~engine.LIST_MAX` items per list, :data:`~engine.LIMIT_MAX` entries asked for and
:data:`~engine.PAGE_MAX` sessions per page of a list. So one request cannot make the daemon store or
work on something unbounded, nor reach a store with a number it cannot hold. A field left out keeps
the daemon's default; ``idle_timeout: null`` means never. The memory operations' structs are in
:mod:`adapters.control._memory_operations`.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from engine import (
    BACKLOG_ID_MAX,
    BACKLOG_ID_PATTERN,
    DESCRIPTION_MAX,
    INT_MAX,
    LIMIT_MAX,
    LIST_MAX,
    NAME_MAX,
    NOTE_MAX,
    PAGE_MAX,
    PATH_MAX,
    TAG_MAX,
)

from ._hook_operations import HOOK_OPERATIONS, HookArgs
from ._import_operations import IMPORT_OPERATIONS, ImportTranscriptArgs
from ._memory_operations import MEMORY_OPERATIONS, MemoryArgs

__all__ = [
    "CONTROL_OPERATIONS",
    "AdoptArgs",
    "AppendArgs",
    "CleanupArgs",
    "ContextArgs",
    "ControlArgs",
    "DashboardUrlArgs",
    "InfoArgs",
    "ListArgs",
    "McpTokenArgs",
    "MonitoringArgs",
    "PingArgs",
    "StartArgs",
    "StatusArgs",
    "StopArgs",
    "SummaryArgs",
    "TagArgs",
    "UntagArgs",
    "ValidateArgs",
    "WatchArgs",
    "WorklogArgs",
]

#: The most days ``cleanup`` takes (a hundred years).
_DAYS_MAX: Final = 36_500.0

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)]
SessionRef = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=NAME_MAX,
        description=(
            "a session id, an agent session id given at start, a unique id prefix, or a backlog id"
        ),
    ),
]
Names = Annotated[list[Name], msgspec.Meta(max_length=LIST_MAX)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=TAG_MAX)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=LIST_MAX)]
BacklogId = Annotated[
    str,
    msgspec.Meta(
        max_length=BACKLOG_ID_MAX,
        pattern=BACKLOG_ID_PATTERN,
        description="a letter, then letters, digits, '-' or '_'",
    ),
]
Text = Annotated[str, msgspec.Meta(max_length=DESCRIPTION_MAX)]
Note = Annotated[str, msgspec.Meta(min_length=1, max_length=NOTE_MAX)]
FilePath = Annotated[str, msgspec.Meta(min_length=1, max_length=PATH_MAX)]
Paths = Annotated[list[FilePath], msgspec.Meta(max_length=LIST_MAX)]


class PingArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Is the daemon there? Answers ``{"pong": true, "pid": ...}``."""


class StatusArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Where the daemon can be reached, its counters, the CPU seconds its process used so far
    (``cpu_seconds``, every thread), whether its monitoring runs (``monitoring``), each gate's
    capacity (``gates``) and what it recommends changing (``recommendations``)."""


class StartArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Start a session on a work tree, or answer the live one of ``agent_session_id`` there.

    ``agent_session_id`` is the id a coding agent uses for its own conversation: while a session
    started with it is live on the same work tree, a start answers that session (the other
    arguments are then ignored); one live on another work tree is refused
    (``InvalidArgumentError``)."""

    repo: FilePath
    name: Name | None = None
    backlog_id: BacklogId | None = None
    kind: Name | None = None
    priority: Name | None = None
    tags: Tags = msgspec.field(default_factory=list)
    description: Text | None = None
    parent: SessionRef | None = None
    related: Names = msgspec.field(default_factory=list)
    idle_timeout: Annotated[float, msgspec.Meta(gt=0)] | msgspec.UnsetType | None = msgspec.UNSET
    files: Paths = msgspec.field(default_factory=list)
    agent_session_id: Name | None = None


class StopArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Stop a session."""

    session: SessionRef


class AdoptArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Take over an orphaned session whose work tree this daemon can reach (its record)."""

    session: SessionRef


class ListArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One page of sessions, oldest first (``{"sessions": [...], "next": id or null}``).

    Those in ``states`` (none: every state) with all ``tags``, of the work tree containing ``repo``
    (an absolute path) when given: at most ``limit`` of them after the session ``after`` (the
    previous page's ``next``)."""

    states: Names = msgspec.field(default_factory=list)
    tags: Tags = msgspec.field(default_factory=list)
    repo: FilePath | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=PAGE_MAX)] = PAGE_MAX
    after: Name | None = None


class AppendArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Append a note to a session's worklog."""

    session: SessionRef
    text: Note


class TagArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Add tags to a session."""

    session: SessionRef
    tags: Tags


class UntagArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Remove tags from a session."""

    session: SessionRef
    tags: Tags


class InfoArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A session, its capture state, entry count and newest summary."""

    session: SessionRef


class ContextArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A session's context for a role (default implementer)."""

    session: SessionRef
    role: Name | None = None


class WorklogArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A session's worklog: the last ``limit`` entries after ``since`` and before ``before``.

    ``since`` and ``before`` are entry seqs; to page back, pass the smallest seq of one answer
    as the next ``before``.

    With ``markdown``, also rendered as markdown."""

    session: SessionRef
    limit: Annotated[int, msgspec.Meta(ge=1, le=LIMIT_MAX)] | None = None
    since: Annotated[int, msgspec.Meta(ge=0, le=INT_MAX)] | None = None
    before: Annotated[int, msgspec.Meta(ge=0, le=INT_MAX)] | None = None
    markdown: bool = False


class SummaryArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A session's newest summary."""

    session: SessionRef


class CleanupArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Remove sessions in final ``states`` (default completed) inactive for more than ``days``."""

    days: Annotated[float, msgspec.Meta(ge=0, le=_DAYS_MAX)]
    states: Names = msgspec.field(default_factory=list)


class ValidateArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Find sessions left by a dead daemon and mark them orphaned."""


class DashboardUrlArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A new dashboard sign-in link with a one-time token. Answers ``{"url": ..., "expires_in": ...}``
    (seconds); the link works once."""


class McpTokenArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A bearer token for the MCP endpoint (``/mcp``), valid for ``days``. Answers ``{"token": ...,
    "url": ..., "expires_at": ...}``."""

    days: Annotated[float, msgspec.Meta(gt=0, le=366)] = 30.0
    name: Name = "mcp-client"


class MonitoringArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Switch the daemon's monitoring (the metric history's sampling, the latency histograms and
    the alerts' judging) on or off while it runs; with ``enabled`` left out, only say whether it
    runs. Answers ``{"enabled": bool}``. While it is off the history and the alerts keep what they
    hold; a restart switches it back to what the configuration says. A daemon configured with
    ``monitoring = false`` has none to switch on (``InvalidArgumentError``)."""

    enabled: bool | None = None


class WatchArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Watch a session: answers ``{"session": {...}}``, then one event line per worklog entry,
    summary or state change of the session (``{"topic", "seq", "time", ...}``) until the client closes
    the connection."""

    session: SessionRef


#: The arguments of any control operation, one struct per operation.
ControlArgs = (
    PingArgs
    | StatusArgs
    | DashboardUrlArgs
    | StartArgs
    | StopArgs
    | AdoptArgs
    | ListArgs
    | AppendArgs
    | TagArgs
    | UntagArgs
    | InfoArgs
    | ContextArgs
    | WorklogArgs
    | SummaryArgs
    | CleanupArgs
    | ValidateArgs
    | WatchArgs
    | McpTokenArgs
    | MonitoringArgs
    | MemoryArgs
    | ImportTranscriptArgs
    | HookArgs
)

#: Every operation by its name on the wire.
CONTROL_OPERATIONS: Final[dict[str, type[ControlArgs]]] = {
    "ping": PingArgs,
    "status": StatusArgs,
    "dashboard_url": DashboardUrlArgs,
    "start": StartArgs,
    "stop": StopArgs,
    "adopt": AdoptArgs,
    "list": ListArgs,
    "append": AppendArgs,
    "tag": TagArgs,
    "untag": UntagArgs,
    "info": InfoArgs,
    "context": ContextArgs,
    "worklog": WorklogArgs,
    "summary": SummaryArgs,
    "cleanup": CleanupArgs,
    "validate": ValidateArgs,
    "watch": WatchArgs,
    "mcp_token": McpTokenArgs,
    "monitoring": MonitoringArgs,
    **MEMORY_OPERATIONS,
    **IMPORT_OPERATIONS,
    **HOOK_OPERATIONS,
}
