"""The transcript import operation: its struct, the arguments it takes. Imports no trio.

``path`` is at most :data:`~engine.PATH_MAX` characters and must be absolute (the daemon's working
directory is not the caller's); ``session`` is a session reference of at most
:data:`~engine.NAME_MAX` characters.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from engine import NAME_MAX, PATH_MAX

__all__ = ["IMPORT_OPERATIONS", "TRANSCRIPT_BUDGET_MAX", "ImportTranscriptArgs"]

#: The most bytes of a transcript one ``import_transcript`` reads (the caller calls again).
TRANSCRIPT_BUDGET_MAX: Final = 256 * 1024 * 1024


class ImportTranscriptArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Import a coding agent's transcript file (a Claude Code transcript, a Codex CLI rollout)
    into memory, from where its last import stopped: running it again stores nothing twice.

    Without ``session``, the conversation goes to the session its agent session id names (the
    transcript's own id), else to a new session, created completed, on the work tree of the
    transcript's ``cwd``. Reads at most ``budget`` bytes; answers ``{"session", "created",
    "agent_session_id", "cwd", "git_branch", "offset", "size", "done", "lines", "records",
    "stored", "duplicates", "summaries", "skipped", "ignored", "restarts"}``: call again while
    ``done`` is false."""

    agent: Literal["claude-code", "codex"]
    path: Annotated[
        str,
        msgspec.Meta(
            min_length=1, max_length=PATH_MAX, description="the transcript's absolute path"
        ),
    ]
    session: Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX)] | None = None
    budget: Annotated[int, msgspec.Meta(ge=1, le=TRANSCRIPT_BUDGET_MAX)] = 64 * 1024 * 1024


#: Every import operation by its name on the wire.
IMPORT_OPERATIONS: Final[dict[str, type[ImportTranscriptArgs]]] = {
    "import_transcript": ImportTranscriptArgs,
}
