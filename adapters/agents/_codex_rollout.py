"""Reading a Codex CLI rollout file incrementally, as bounded records.

Codex writes each session to ``~/.codex/sessions/YYYY/MM/DD/rollout-<time>-<id>.jsonl``
(openai/codex ``codex-rs/core/src/rollout/recorder.rs``), one JSON object per line, flushed per
line. Since mid-2025 a line is a ``RolloutLine`` (openai/codex ``codex-rs/protocol/src/
protocol.rs``): ``{"timestamp": ..., "type": ..., "payload": ...}`` where ``type`` is

- ``session_meta``: ``SessionMetaLine``: ``id``, ``timestamp``, ``cwd``, ``originator``,
  ``cli_version``, ``source`` (``{"subagent": ...}`` for a subagent's session), and ``git``
  (``GitInfo``: ``commit_hash``, ``branch``, ``repository_url``); the first line;
- ``response_item``: a ``ResponseItem`` (``codex-rs/protocol/src/models.rs``): ``message``
  (``role``; ``content`` of ``input_text``, ``output_text``, ``input_image`` items),
  ``reasoning`` (never kept), ``function_call`` (``name``, ``arguments`` as a JSON string,
  ``call_id``), ``function_call_output`` (``call_id``, ``output``: a string, content items, or
  ``{content, success}``), ``custom_tool_call`` / ``custom_tool_call_output``,
  ``local_shell_call``, ``web_search_call``, ``ghost_snapshot`` and ``compaction``;
- ``compacted``: ``CompactedItem``, the ``message`` a compaction left;
- ``turn_context``: ``TurnContextItem``: the turn's ``cwd`` and ``model``;
- ``event_msg``: ``EventMsg``, the UI's events (``user_message``, ``agent_message``,
  ``token_count``, ...), which repeat what the response items say: read, nothing kept.

Older rollouts have no wrapper: a first line ``{"id", "timestamp", "instructions", "git"}``,
``{"record_type": "state"}`` markers, then bare response items. Both shapes are read.

Codex lines carry no id of their own: a record's uid is a hash of its line. The session's id, cwd
and branch come from the ``session_meta`` line; a read from an offset past it reads the file's
first line again (at most :data:`HEAD_BYTES`) to know them. The messages Codex injects
(``<environment_context>``, ``<user_instructions>``, AGENTS.md) and developer messages are marked
``meta``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from ._jsonl_lines import RawLine, decode_object, read_batch, read_head_line
from ._tool_calls import codex_tool_effects
from ._transcript_records import (
    PATH_LIMIT,
    BoundedText,
    LineRecords,
    RecordContext,
    RecordKind,
    TranscriptBatch,
    TranscriptRecord,
    bounded,
    bounded_field,
    input_excerpt,
    parse_timestamp,
)

__all__ = ["HEAD_BYTES", "read_codex_rollout"]

#: Bytes of the file's start read to find the ``session_meta`` line when reading from an offset.
HEAD_BYTES: Final = 1024 * 1024

_WRAPPED: Final = frozenset(
    {"session_meta", "response_item", "compacted", "turn_context", "event_msg"}
)
_QUIET_ITEMS: Final = frozenset({"reasoning", "ghost_snapshot", "compaction", "compaction_summary"})
_INJECTED: Final = (
    "<environment_context",
    "<user_instructions",
    "<permissions instructions",
    "# AGENTS.md instructions",
)
_MESSAGE_KINDS: Final[dict[str, RecordKind]] = {
    "user": "user_message",
    "assistant": "assistant_message",
}


def read_codex_rollout(
    path: str | os.PathLike[str], *, offset: int = 0, max_bytes: int | None = None
) -> TranscriptBatch:
    """Read the records of a Codex CLI rollout file from byte ``offset`` on.

    Synchronous and bounded like :func:`read_claude_transcript` (same arguments, result and
    errors); from a worker thread, a cancellation abandons the thread, which ends once the bounded
    read is done.

    Raises:
        NoSuchFileError: the file does not exist.
        NotRegularFileError: a FIFO, socket or device (refused without blocking).
        FileAccessError: a directory, or the OS refused the read.
        InvalidArgumentError: a negative ``offset`` or a ``max_bytes`` below 1.
    """
    return read_batch(path, offset, max_bytes, _CodexLines())


class _CodexLines:
    def __init__(self) -> None:
        self._context = RecordContext()
        self._tools: dict[str, str] = {}

    def begin(self, fd: int, offset: int) -> None:
        if offset == 0:
            return
        head = read_head_line(fd, HEAD_BYTES)
        obj = decode_object(head) if head is not None else None
        if obj is None:
            return
        if obj.get("type") == "session_meta" and isinstance(obj.get("payload"), Mapping):
            self._session_meta(obj["payload"])
        elif "type" not in obj and "id" in obj:
            self._session_meta(obj)

    def _session_meta(self, meta: Mapping[str, Any]) -> None:
        git = meta.get("git")
        source = meta.get("source")
        self._context = replace(
            self._context,
            session_id=bounded_field(meta.get("id")),
            cwd=bounded_field(meta.get("cwd"), PATH_LIMIT) or self._context.cwd,
            git_branch=bounded_field(git.get("branch")) if isinstance(git, Mapping) else None,
            sidechain=isinstance(source, Mapping) and "subagent" in source,
        )

    def parse(self, line: RawLine, obj: dict[str, Any]) -> list[TranscriptRecord] | None:
        assert line.data is not None
        kind = obj.get("type")
        payload = obj.get("payload")
        if kind in _WRAPPED and isinstance(payload, Mapping):
            timestamp = parse_timestamp(obj.get("timestamp"))
            if kind == "session_meta":
                self._session_meta(payload)
                return []
            if kind == "turn_context":
                cwd = bounded_field(payload.get("cwd"), PATH_LIMIT)
                model = bounded_field(payload.get("model"))
                self._context = replace(
                    self._context, cwd=cwd or self._context.cwd, model=model or self._context.model
                )
                return []
            if kind == "event_msg":
                return []
            out = self._records(line, timestamp)
            if kind == "compacted":
                message = payload.get("message")
                if not isinstance(message, str):
                    return None
                out.add("summary", None, bounded(message))
                return out.records
            return out.records if self._item(out, payload) else None
        if "record_type" in obj:  # an older rollout's state marker
            return []
        if kind is None and "id" in obj:  # an older rollout's first line
            self._session_meta(obj)
            return []
        out = self._records(line, parse_timestamp(obj.get("timestamp")))
        return out.records if self._item(out, obj) else None

    def _records(self, line: RawLine, timestamp: datetime | None) -> LineRecords:
        assert line.data is not None
        context = replace(self._context, timestamp=timestamp)
        return LineRecords(line.offset, line.data, None, context)

    def _item(self, out: LineRecords, item: Mapping[str, Any]) -> bool:
        """Add the records of one response item; False when its type is unknown."""
        item_type = item.get("type")
        if item_type in _QUIET_ITEMS:
            return True
        if item_type == "message":
            self._message(out, item)
        elif item_type in ("function_call", "custom_tool_call"):
            tool = bounded_field(item.get("name"))
            call_id = bounded_field(item.get("call_id"))
            arguments = item.get("arguments" if item_type == "function_call" else "input")
            self._tool_use(out, tool, call_id, arguments)
        elif item_type == "local_shell_call":
            action = item.get("action")
            call_id = bounded_field(item.get("call_id")) or bounded_field(item.get("id"))
            self._tool_use(out, "local_shell", call_id, action)
        elif item_type == "web_search_call":
            self._tool_use(out, "web_search", bounded_field(item.get("id")), item.get("action"))
        elif item_type in ("function_call_output", "custom_tool_call_output"):
            self._tool_result(out, item)
        else:
            return False
        return True

    def _message(self, out: LineRecords, item: Mapping[str, Any]) -> None:
        role = bounded_field(item.get("role"))
        content = item.get("content")
        text = BoundedText()
        if isinstance(content, str):
            text.add(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, Mapping):
                    continue
                if part.get("type") in ("input_text", "output_text", "text"):
                    if isinstance(part.get("text"), str):
                        text.add(part["text"], "\n\n")
                elif part.get("type") == "input_image":
                    text.add(_image_placeholder(part.get("image_url")), "\n\n")
        if not text:
            return
        kind = _MESSAGE_KINDS.get(role or "", "system")
        body = text.text()
        injected = kind == "user_message" and body.lstrip().startswith(_INJECTED)
        out.add(kind, role, body, meta=kind == "system" or injected)

    def _tool_use(
        self, out: LineRecords, tool: str | None, call_id: str | None, arguments: object
    ) -> None:
        if tool is not None and call_id is not None:
            self._tools[call_id] = tool
        paths, command = codex_tool_effects(tool or "", arguments)
        out.add(
            "tool_use",
            "assistant",
            tool=tool,
            tool_input=input_excerpt(arguments),
            call_id=call_id,
            paths=paths,
            command=command,
        )

    def _tool_result(self, out: LineRecords, item: Mapping[str, Any]) -> None:
        call_id = bounded_field(item.get("call_id"))
        output = item.get("output")
        error = False
        if isinstance(output, Mapping):  # {content, success} of some versions
            error = output.get("success") is False
            output = output.get("content")
        text = BoundedText()
        if isinstance(output, str):
            text.add(output)
        elif isinstance(output, list):
            for part in output:
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    text.add(part["text"])
                elif isinstance(part, Mapping) and part.get("type") == "input_image":
                    text.add(_image_placeholder(part.get("image_url")))
        out.add(
            "tool_result",
            "tool",
            text.text(),
            tool=self._tools.get(call_id) if call_id is not None else None,
            call_id=call_id,
            error=error,
        )


def _image_placeholder(url: object) -> str:
    """``[image: image/png]`` for a ``data:image/png;base64,...`` URL (never kept), else
    ``[image]``."""
    if isinstance(url, str) and url.startswith("data:"):
        media = url[5 : url.find(";", 5, 105)] if url.find(";", 5, 105) > 5 else ""
        if media and media.isascii() and "," not in media:
            return f"[image: {media}]"
    return "[image]"
