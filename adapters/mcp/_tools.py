"""The MCP tools: each one a control operation of the daemon, with its schemas and a short text.

The tool names are a contract. A tool's input schema is its control operation's argument struct
(:data:`~adapters.CONTROL_OPERATIONS`: the same names, types and limits the daemon checks), with a
description per field; its output schema is the struct of its answer (:mod:`._results`). The text
that goes with a structured answer is for people and models: short, literal (no control
characters, never markup) and cut at :data:`TEXT_MAX` characters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, final

import msgspec
import orjson

from engine import owner_label, visible

from . import _results as r

__all__ = ["MCP_TOOLS", "TEXT_MAX", "McpTool"]

#: The longest text that goes with an answer, in characters (the structured answer has it all).
TEXT_MAX: Final = 16_000

#: Characters of each value the context text shows (the structured content has all).
_GIST_CHARS: Final = 40
#: Fields of each context source the text shows at most.
_GIST_FIELDS: Final = 4
_SESSION_HINT: Final = (
    "the session: its Scribe id, a unique prefix of it, its backlog id, or the agent's own "
    "session id given to start_session"
)


@final
@dataclass(frozen=True, slots=True)
class McpTool:
    """One tool.

    Attributes:
        name: its name (a contract).
        op: the control operation it calls.
        title: a short human title.
        description: what it does, for the model choosing tools.
        output: the struct its answer matches.
        text: the short text going with an answer.
        hints: descriptions of its arguments.
        read_only: it changes nothing.
        idempotent: calling it again with the same arguments changes nothing more.
    """

    name: str
    op: str
    title: str
    description: str
    output: type[msgspec.Struct]
    text: Callable[[Any], str]
    hints: Mapping[str, str] = field(default_factory=dict)
    read_only: bool = True
    idempotent: bool = True


def _cut(text: str) -> str:
    text = visible(text, multiline=True)
    if len(text) <= TEXT_MAX:
        return text
    return text[: TEXT_MAX - 60] + "\n… (cut here; the structured content has all of it)"


def _session_line(s: Mapping[str, Any]) -> str:
    where = f" on {s['repo_path']}" if s.get("repo_path") else ""
    backlog = f" [{s['backlog_id']}]" if s.get("backlog_id") else ""
    daemon = s.get("daemon")
    by = f", daemon {owner_label(daemon)}" if daemon else ""
    return f"{s['id']} {s['name']}{backlog} ({s['state']}, {s['priority']}{by}){where}"


def _sessions_text(page: Mapping[str, Any]) -> str:
    sessions = page["sessions"]
    if not sessions:
        return "No sessions match."
    lines = [f"{len(sessions)} session(s):"] + [f"- {_session_line(s)}" for s in sessions]
    if page.get("next"):
        lines.append(f"More: call again with after={page['next']}.")
    return _cut("\n".join(lines))


def _started_text(s: Mapping[str, Any]) -> str:
    return _cut(f"Session {_session_line(s)}.")


def _note_text(e: Mapping[str, Any]) -> str:
    return _cut(f"Note #{e['seq']} added to session {e['session_id']}.")


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value if len(value) <= _GIST_CHARS else value[: _GIST_CHARS - 1] + "…"
    return _json(value)


def _gist(value: Any) -> str:
    """A few words on a context source's value: its first scalar fields (not null), or how many
    items it has."""
    if isinstance(value, list):
        return f"{len(value)} item(s)"
    if not isinstance(value, Mapping):
        return _scalar(value)
    shown = [
        f"{k}={_scalar(v)}"
        for k, v in value.items()
        if isinstance(v, str | int | float | bool)
    ][:_GIST_FIELDS]
    more = len(value) - len(shown)
    return ", ".join(shown + ([f"{more} more field(s)"] if more else [])) or "empty"


def _context_text(c: Mapping[str, Any]) -> str:
    """One line per source (its gist); the structured content has every value in full."""
    sources = c["sources"]
    lines = [f"Context of session {c['session_id']} for the {c['role']}, {len(sources)} "
             "source(s) (each in full in the structured content):"]  # fmt: skip
    for name, source in sources.items():
        if source.get("status") == "ok":
            lines.append(f"- {name}: {_gist(source.get('value'))}")
        else:
            lines.append(f"- {name}: {source.get('status')}: {source.get('error') or 'no value'}")
    return _cut("\n".join(lines))


def _worklog_text(w: Mapping[str, Any]) -> str:
    if w.get("markdown"):
        return _cut(str(w["markdown"]))
    entries = w["entries"]
    lines = [f"Worklog of session {_session_line(w['session'])}: {len(entries)} entries"]
    for e in entries:
        lines.append(f"#{e['seq']} {e['kind']}: {_json(e['payload'])}")
    return _cut("\n".join(lines))


def _summary_text(s: Mapping[str, Any]) -> str:
    summary = s["summary"]
    if summary is None:
        return _cut(f"Session {s['session']['id']} has no summary yet.")
    return _cut(f"Summary of session {s['session']['id']} (version {summary['version']}):\n"
                + _json({k: v for k, v in summary.items() if k not in ("session_id", "version")}))


def _remember_text(m: Mapping[str, Any]) -> str:
    return _cut(f"Remembered a {m['kind']} in memory session {m['session_id']}.")


def _decision_text(d: Mapping[str, Any]) -> str:
    return _cut(f"Decision {d['id']} recorded ({d['status']}).")


def _recall_text(found: Mapping[str, Any]) -> str:
    hits = found["hits"]
    if not hits:
        return "Nothing found."
    lines = [f"{len(hits)} hit(s), best first:"]
    for h in hits:
        text = h.get("text") or h.get("content") or h.get("title") or ""
        lines.append(f"- [{h.get('kind')}:{h.get('id')}] {text}")
    return _cut("\n".join(lines))


def _rehydrate_text(b: Mapping[str, Any]) -> str:
    return _cut(str(b["text"]) or "Nothing found.")


def _lookup_text(c: Mapping[str, Any]) -> str:
    if not c["hit"]:
        return "No cached generation matches."
    return _cut(f"Cached ({c.get('outcome')}):\n{c.get('response')}")


def _stored_text(c: Mapping[str, Any]) -> str:
    return _cut(f"Stored under key {c['key']}.")


#: Every tool, in the order ``tools/list`` gives them.
MCP_TOOLS: Final[tuple[McpTool, ...]] = (
    McpTool(
        "list_sessions",
        "list",
        "List sessions",
        "List Scribe sessions, oldest first, filtered by state, tags and repository.",
        r.SessionPageOut,
        _sessions_text,
        {
            "states": "keep sessions in these states (starting, active, idle, completed, failed, "
            "cancelled, orphaned); none: every state",
            "tags": "keep sessions having all these tags",
            "repo": "keep sessions on this repository (a path)",
            "limit": "at most this many sessions",
            "after": "the `next` of the previous page",
        },
    ),
    McpTool(
        "start_session",
        "start",
        "Start a session",
        "Start a Scribe session on a git work tree: its changes, commits and notes are kept in "
        "its worklog from now on. Give your own session id as agent_session_id to refer to it by "
        "that id later; starting again with the same one returns the live session.",
        r.Session,
        _started_text,
        {
            "repo": "the git work tree to watch (a path)",
            "agent_session_id": "your own session id, to refer to this session by",
            "backlog_id": "the backlog item worked on, e.g. B-1042",
            "kind": "implementation, review, research, planning or other",
            "priority": "critical, high, medium, low or background",
            "tags": "free-form labels",
        },
        read_only=False,
    ),
    McpTool(
        "end_session",
        "stop",
        "End a session",
        "End a Scribe session: its worklog gets its final entry and summary.",
        r.Session,
        _started_text,
        {"session": _SESSION_HINT},
        read_only=False,
    ),
    McpTool(
        "add_note",
        "append",
        "Add a note",
        "Append a note to a session's worklog (what was done, found or planned).",
        r.Entry,
        _note_text,
        {"session": _SESSION_HINT, "text": "the note"},
        read_only=False,
        idempotent=False,
    ),
    McpTool(
        "record_decision",
        "decide",
        "Record a decision",
        "Record a decision in memory, optionally superseding an earlier one by its id.",
        r.DecisionOut,
        _decision_text,
        {
            "text": "the decision, in a line",
            "body": "why, and what it implies",
            "session": _SESSION_HINT,
            "repo": "the repository it concerns (a path)",
            "supersedes": "the id of the decision this one replaces",
            "files": "files it concerns",
            "entities": "names it concerns (modules, services, people)",
            "ttl": "seconds to keep it (default: for good)",
        },
        read_only=False,
        idempotent=False,
    ),
    McpTool(
        "get_context",
        "context",
        "Get context",
        "A session's working context for a role: git state, recent changes, worklog and more.",
        r.ContextOut,
        _context_text,
        {"session": _SESSION_HINT, "role": "implementer (default), coder, planner, reviewer ..."},
    ),
    McpTool(
        "get_worklog",
        "worklog",
        "Get the worklog",
        "A session's worklog entries, oldest first (the newest `limit`, after entry `since` and"
        " before entry `before`).",
        r.WorklogOut,
        _worklog_text,
        {
            "session": _SESSION_HINT,
            "limit": "at most this many (the newest)",
            "since": "only entries after this entry number",
            "before": "only entries before this entry number (pages back)",
            "markdown": "also render it as markdown",
        },
    ),
    McpTool(
        "get_summary",
        "summary",
        "Get the summary",
        "A session's newest summary.",
        r.SummaryOut,
        _summary_text,
        {"session": _SESSION_HINT},
    ),
    McpTool(
        "remember",
        "remember",
        "Remember",
        "Keep a message or a fact in memory, for a session or a repository, to recall later.",
        r.RememberOut,
        _remember_text,
        {
            "text": "what to remember",
            "kind": "message (default) or fact",
            "role": "who said it: user (default), assistant, system or tool",
            "session": _SESSION_HINT,
            "repo": "the repository it concerns (a path); memory of a repository is found from "
            "every session on it",
            "fact_type": "a fact's type (default note)",
            "key": "a fact's key (default: derived from the text); a new value replaces the old",
            "ttl": "seconds to keep it (default: for good)",
            "pinned": "a fact that always comes first",
        },
        read_only=False,
        idempotent=False,
    ),
    McpTool(
        "recall",
        "recall",
        "Recall",
        "Search memory (messages, facts, decisions) by meaning and words, best first.",
        r.RecallOut,
        _recall_text,
        {
            "query": "what to look for",
            "k": "at most this many hits",
            "session": "only this session's memory (" + _SESSION_HINT + ")",
            "repo": "only this repository's memory (a path)",
            "kind": "messages, decisions, facts or all (default)",
            "include_superseded": "also decisions replaced by later ones",
        },
    ),
    McpTool(
        "rehydrate",
        "rehydrate",
        "Rehydrate",
        "A memory bundle for a task, packed to a token budget for a role, with citations.",
        r.RehydrateOut,
        _rehydrate_text,
        {
            "query": "what the bundle is for",
            "role": "pack it for this role (planner, implementer, coder, researcher, reviewer)",
            "budget": "the token budget",
            "session": _SESSION_HINT,
            "repo": "the repository (a path)",
            "timeout": "seconds the sources may take",
        },
    ),
    McpTool(
        "cache_lookup",
        "cache_lookup",
        "Look up a cached generation",
        "A cached LLM answer for this prompt, model and settings (exact, or a guarded similar "
        "prompt), if there is one.",
        r.CacheLookupOut,
        _lookup_text,
        {
            "prompt": "the prompt as sent to the model",
            "model": "the model's name",
            "settings": "the generation settings (temperature ...), part of the key",
        },
    ),
    McpTool(
        "cache_store",
        "cache_store",
        "Store a generation",
        "Keep an LLM answer for this prompt, model and settings, for cache_lookup.",
        r.CacheStoreOut,
        _stored_text,
        {
            "prompt": "the prompt as sent to the model",
            "model": "the model's name",
            "settings": "the generation settings, part of the key",
            "response": "the model's answer",
            "ttl": "seconds to keep it (default: the cache's)",
        },
        read_only=False,
    ),
)
