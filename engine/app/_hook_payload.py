"""Claude Code's hook input, checked: the fields Scribe reads, their types and sizes, and the worklog
entry a tool call makes. Imports no trio and does no I/O.

The fields (https://code.claude.com/docs/en/hooks): every event has ``session_id``,
``transcript_path``, ``cwd`` and ``hook_event_name``; ``SessionStart`` has ``source`` (``startup``,
``resume``, ``clear``, ``compact``), ``UserPromptSubmit`` has ``prompt``, ``PostToolUse`` has
``tool_name``, ``tool_input`` and ``tool_response``, ``SessionEnd`` has ``reason``. Other fields
are ignored; a field Scribe reads with the wrong type or size is refused
(:class:`~engine.InvalidArgumentError`), never guessed at.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Final

import adapters

from .._core._errors import InvalidArgumentError
from .._core._limits import NAME_MAX, PATH_MAX, check_length
from .._ports._session_store import check_agent_session_id

__all__ = ["EXCERPT_CHARS", "HOOK_EVENTS", "HookEvent", "read_hook_event", "tool_entry"]

#: The events the daemon acts on; any other is answered with null.
HOOK_EVENTS: Final = frozenset(
    {"SessionStart", "UserPromptSubmit", "PostToolUse", "PreCompact", "Stop", "SessionEnd"}
)
#: The most characters of a tool's input, and of its result, a worklog entry keeps.
EXCERPT_CHARS: Final = 2000
#: The longest prompt read (a longer one is refused: the control line bounds it anyway).
PROMPT_MAX: Final = 512 * 1024
_WORD_MAX: Final = 64


@dataclass(frozen=True, slots=True)
class HookEvent:
    """The fields of one hook input that Scribe reads (already scrubbed).

    Attributes:
        event: ``hook_event_name``.
        agent_session_id: ``session_id``, the agent's own conversation id.
        cwd: the directory the agent works in (absolute; None: not given).
        transcript_path: the conversation's transcript file (absolute; None: not given).
        source: why a session starts (``startup``, ``resume``, ``clear``, ``compact``).
        prompt: the prompt submitted.
        tool_name, tool_input, tool_response: the tool call that finished.
    """

    event: str
    agent_session_id: str
    cwd: str | None = None
    transcript_path: str | None = None
    source: str | None = None
    prompt: str | None = None
    tool_name: str | None = None
    tool_input: Any = None
    tool_response: Any = None


def _word(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _WORD_MAX:
        raise InvalidArgumentError(f"{key} must be a string of 1 to {_WORD_MAX} characters")
    return value


def _path(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{key} must be a string, not {type(value).__name__}")
    check_length(key, value, PATH_MAX)
    if "\0" in value or not os.path.isabs(value):
        raise InvalidArgumentError(f"{key} must be an absolute path, got {value[:200]!r}")
    return value


def read_hook_event(payload: Mapping[str, Any]) -> HookEvent | None:
    """The fields Scribe reads of a Claude Code hook input (None: an event it does not act on).

    Raises:
        InvalidArgumentError: a field it reads is missing, has the wrong type or is too large
            (:class:`~engine.FieldLimitError`).
    """
    event = payload.get("hook_event_name")
    if not isinstance(event, str) or event not in HOOK_EVENTS:
        return None
    agent = check_agent_session_id(payload.get("session_id"))
    prompt = payload.get("prompt")
    if event == "UserPromptSubmit":
        if not isinstance(prompt, str):
            raise InvalidArgumentError("a UserPromptSubmit hook input needs its prompt (a string)")
        check_length("prompt", prompt, PROMPT_MAX)
    tool = payload.get("tool_name")
    if event == "PostToolUse":
        if not isinstance(tool, str) or not tool.strip() or not tool.isprintable():
            raise InvalidArgumentError("a PostToolUse hook input needs its tool_name (a string)")
        check_length("tool_name", tool, NAME_MAX)
    cwd = _path(payload, "cwd")
    if cwd is None and event in ("SessionStart", "UserPromptSubmit", "PostToolUse"):
        raise InvalidArgumentError(f"a {event} hook input needs its cwd (an absolute path)")
    return HookEvent(
        event=event,
        agent_session_id=agent,
        cwd=cwd,
        transcript_path=_path(payload, "transcript_path"),
        source=_word(payload, "source"),
        prompt=prompt if event == "UserPromptSubmit" else None,
        tool_name=tool if event == "PostToolUse" else None,
        tool_input=payload.get("tool_input"),
        tool_response=payload.get("tool_response"),
    )


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """A JSON value as compact text (a string as it is), cut to ``limit`` characters."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= limit:
        return text
    return text[: limit - 30] + f"... [{len(text) - limit + 30} characters cut]"


def _succeeded(response: Any) -> bool:
    """Whether a tool's result says it worked (Claude Code's ``success``, ``is_error``,
    ``interrupted``, ``error``)."""
    if not isinstance(response, Mapping):
        return True
    if response.get("success") is False or response.get("is_error") is True:
        return False
    return not (response.get("interrupted") is True or bool(response.get("error")))


def _relative(path: str, root: str | None) -> str:
    if root is None:
        return path
    try:
        return PurePosixPath(path).relative_to(root).as_posix()
    except ValueError:
        return path


def tool_entry(event: HookEvent, root: str | None) -> dict[str, Any]:
    """The worklog entry payload of a finished tool call: ``tool``, ``agent``, ``paths``
    (root-relative inside the work tree ``root``), ``command``, ``input`` and ``result`` (bounded
    excerpts of the scrubbed values), ``ok``."""
    tool = event.tool_name or "?"
    paths, command = adapters.claude_tool_effects(tool, event.tool_input)
    return {
        "tool": tool,
        "agent": "claude-code",
        "paths": [_relative(p, root) for p in paths],
        "command": command,
        "input": excerpt(event.tool_input),
        "result": excerpt(event.tool_response),
        "ok": _succeeded(event.tool_response),
    }
