"""What a transcript record becomes in memory: a message, a summary fact, or nothing.

Every text is scrubbed with the stack's :class:`~engine.Privacy` (``<private>`` blocks removed,
likely secrets redacted) before anything is kept. The records come bounded from the readers
(``adapters.agents``): a text is at most 8,000 characters, a tool input 2,000.

- a user or assistant message: a message of its role; its metadata holds the agent, the record's
  kind, timestamp, model, whether it was said in a subagent (``sidechain``) and the agent's
  session id;
- a tool use: a ``tool`` message naming the tool and what it ran or wrote (the command, the paths,
  else the input's excerpt), with the tool, paths, command and call id in its metadata. Never a
  worklog entry: the PostToolUse hook writes the worklog as the tools run, and the watcher sees
  every file the tools change;
- a tool result: a ``tool`` message of its first :data:`RESULT_EXCERPT` characters (the error flag
  and call id in its metadata);
- a summary (a session's title, a compaction's summary): a fact ``transcript_summary`` of the
  session, keyed by the record's uid;
- harness records (``system``, Claude Code's ``isMeta``, Codex's injected context): nothing.

Thinking never reaches a record (the readers drop it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import adapters

from .._core._privacy import Privacy
from .._ports._memory_records import MessageRole, NewMessage

__all__ = [
    "AGENTS",
    "RESULT_EXCERPT",
    "SUMMARY_FACT",
    "Agent",
    "TranscriptMemory",
    "summary_key",
    "to_memory",
]

#: The agents whose transcripts are read.
Agent = Literal["claude-code", "codex"]
AGENTS: Final[tuple[Agent, ...]] = ("claude-code", "codex")
#: Characters of a tool result kept as a message.
RESULT_EXCERPT: Final = 2_000
#: The fact type of a transcript's summaries.
SUMMARY_FACT: Final = "transcript_summary"

_ROLES: Final = {"user_message": MessageRole.USER, "assistant_message": MessageRole.ASSISTANT}


@dataclass(slots=True)
class TranscriptMemory:
    """What a batch of records becomes: messages to add and summary facts to set (``(key,
    text)``), and how many records became nothing."""

    messages: list[NewMessage] = field(default_factory=list)
    summaries: list[tuple[str, str]] = field(default_factory=list)
    ignored: int = 0


def _cut(text: str, limit: int) -> str:
    return (
        text
        if len(text) <= limit
        else f"{text[:limit]}… [{len(text) - limit:,} more characters cut]"
    )


def summary_key(uid: str) -> str:
    """The fact key of a summary record: a hash of its uid (uids are not all short)."""
    return "s-" + hashlib.sha256(uid.encode("utf-8")).hexdigest()[:32]


def _tool_text(r: adapters.TranscriptRecord) -> str:
    what = r.command or " ".join(r.paths) or r.tool_input or ""
    return f"{r.tool or 'tool'}: {what}".rstrip(": ") if what else (r.tool or "tool")


def to_memory(
    records: Sequence[adapters.TranscriptRecord],
    *,
    agent: Agent,
    agent_session_id: str | None,
    privacy: Privacy,
) -> TranscriptMemory:
    """The memory ``records`` become (see the module's docstring), scrubbed by ``privacy``."""
    out = TranscriptMemory()
    scrub = privacy.scrub
    for r in records:
        if r.meta or r.kind == "system":
            out.ignored += 1
            continue
        meta: dict[str, Any] = {"agent": agent, "kind": r.kind}
        if r.timestamp is not None:
            meta["timestamp"] = r.timestamp.isoformat()
        if r.sidechain:
            meta["sidechain"] = True
        session = r.session_id or agent_session_id
        if session is not None:
            meta["agent_session_id"] = session
        if r.model is not None:
            meta["model"] = r.model
        if r.kind == "summary":
            if r.text.strip():
                out.summaries.append((summary_key(r.uid), scrub(r.text)))
            else:
                out.ignored += 1
            continue
        role = _ROLES.get(r.kind, MessageRole.TOOL)
        if r.kind == "tool_use":
            text = _tool_text(r)
            meta |= {"tool": r.tool, "call_id": r.call_id}
            if r.paths:
                meta["paths"] = [scrub(p) for p in r.paths]
            if r.command is not None:
                meta["command"] = scrub(r.command)
        elif r.kind == "tool_result":
            text = _cut(r.text, RESULT_EXCERPT)
            meta |= {"tool": r.tool, "call_id": r.call_id, "error": r.error}
        else:
            text = r.text
        text = scrub(text)
        if not text.strip():
            out.ignored += 1
            continue
        # The metadata's other strings are the agent's identifiers (bounded by the reader), the
        # record's kind and timestamp: nothing a person typed.
        out.messages.append(NewMessage(role=role, content=text, metadata=meta, source_id=r.uid))
    return out
