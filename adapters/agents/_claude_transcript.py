"""Reading a Claude Code session transcript incrementally, as bounded records.

The format, as public sources describe it (Anthropic calls it internal and subject to change, so
every field is optional here and an unknown shape is skipped, never fatal):

- Claude Code's hooks docs (https://code.claude.com/docs/en/hooks): every hook payload carries
  ``transcript_path``, the session's JSONL file under ``~/.claude/projects/<project>/``.
- Claude Code's SDK sessions docs (https://docs.claude.com/en/docs/claude-code/sdk/sdk-sessions):
  one JSON object per line, ``{"type": "user", "uuid": ..., "parentUuid": ..., "timestamp": ...,
  "message": {"content": ...}}``.
- ryoppippi/ccusage ``src/data-loader.ts`` and thedotmack/claude-mem ``src/cli/adapters/
  claude-code.ts`` read the same files; skillsynchq/txcript ``docs/formats/claude-code.md`` and
  alicoding/claude-parser ``docs/JSONL-STRUCTURE.md`` list the records seen in real sessions.

A line is one of:

- ``user`` / ``assistant``: ``uuid``, ``parentUuid``, ``sessionId``, ``timestamp`` (ISO 8601),
  ``cwd``, ``gitBranch``, ``isSidechain`` (a subagent's turn), ``isMeta`` (put there by the
  harness), ``isCompactSummary`` (the summary a compaction left), and ``message`` with ``role``,
  ``model`` (assistant) and ``content``: a string, or a list of blocks ``text``, ``thinking``,
  ``redacted_thinking``, ``tool_use`` (``id``, ``name``, ``input``), ``tool_result``
  (``tool_use_id``, ``content`` as a string or blocks, ``is_error``) and ``image`` (``source``
  with ``media_type`` and base64 ``data``);
- ``summary``: ``{"type": "summary", "summary": ..., "leafUuid": ...}``, a session's title;
- ``system``: harness notices (``subtype`` such as ``compact_boundary``, ``content``);
- bookkeeping (``file-history-snapshot``, ``queue-operation``, ``progress``): read, nothing kept;
- anything else: counted as skipped.

Thinking is never kept (its text reaches no record); an image becomes ``[image: image/png]``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

from ._jsonl_lines import RawLine, read_batch
from ._tool_calls import claude_tool_effects
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

__all__ = ["read_claude_transcript"]

_BOOKKEEPING: Final = frozenset({"file-history-snapshot", "queue-operation", "progress"})
_HIDDEN_BLOCKS: Final = frozenset({"thinking", "redacted_thinking"})


def read_claude_transcript(
    path: str | os.PathLike[str], *, offset: int = 0, max_bytes: int | None = None
) -> TranscriptBatch:
    """Read the records of a Claude Code transcript from byte ``offset`` on.

    Synchronous and bounded: it reads at most ``max_bytes`` (64 MiB when None) past ``offset``,
    of the file as it was when opened (see :mod:`._jsonl_lines` for the exact bounds). Run it in a
    worker thread from async code; a cancellation there abandons the thread, which ends once the
    bounded read is done, holding nothing open.

    Args:
        path: the transcript (``transcript_path`` of a hook payload).
        offset: where to start: 0, or the ``next_offset`` of the previous batch.
        max_bytes: how many bytes to read at most (the first line is always read whole).

    Returns:
        The batch; a torn last line is left for the next read, unreadable lines are counted.

    Raises:
        NoSuchFileError: the file does not exist.
        NotRegularFileError: a FIFO, socket or device (refused without blocking).
        FileAccessError: a directory, or the OS refused the read.
        InvalidArgumentError: a negative ``offset`` or a ``max_bytes`` below 1.
    """
    return read_batch(path, offset, max_bytes, _ClaudeLines())


class _ClaudeLines:
    def __init__(self) -> None:
        self._tools: dict[str, str] = {}  # tool_use id -> tool name, to name results

    def begin(self, fd: int, offset: int) -> None:
        return None

    def parse(self, line: RawLine, obj: dict[str, Any]) -> list[TranscriptRecord] | None:
        assert line.data is not None
        kind = obj.get("type")
        if kind in _BOOKKEEPING:
            return []
        message = obj.get("message")
        model = None
        if kind == "assistant" and isinstance(message, Mapping):
            model = bounded_field(message.get("model"))
        context = RecordContext(
            timestamp=parse_timestamp(obj.get("timestamp")),
            session_id=bounded_field(obj.get("sessionId")),
            cwd=bounded_field(obj.get("cwd"), PATH_LIMIT),
            git_branch=bounded_field(obj.get("gitBranch")),
            sidechain=obj.get("isSidechain") is True,
            meta=obj.get("isMeta") is True,
            model=model,
        )
        out = LineRecords(line.offset, line.data, bounded_field(obj.get("uuid")), context)
        if kind == "summary":
            summary = obj.get("summary")
            if not isinstance(summary, str):
                return None
            out.add("summary", None, bounded(summary))
        elif kind == "system":
            content = obj.get("content")
            text = bounded(content) if isinstance(content, str) else ""
            out.add("system", "system", text, meta=True)
        elif kind in ("user", "assistant"):
            if not isinstance(message, Mapping):
                return None
            role = bounded_field(message.get("role")) or kind
            compact = obj.get("isCompactSummary") is True
            if not self._message(out, kind, role, message.get("content"), compact):
                return None
        else:
            return None
        return out.records

    def _message(
        self, out: LineRecords, kind: str, role: str, content: object, compact: bool
    ) -> bool:
        """Add the records of a message's content; False when the content has no known shape."""
        message_kind: RecordKind = (
            "summary" if compact else "user_message" if kind == "user" else "assistant_message"
        )
        if isinstance(content, str):
            if content:
                out.add(message_kind, role, bounded(content))
            return True
        if not isinstance(content, list):
            return False
        text = BoundedText()

        def flush() -> None:
            nonlocal text
            if text:
                out.add(message_kind, role, text.text())
                text = BoundedText()

        for block in content:
            if not isinstance(block, Mapping):
                continue
            block_type = block.get("type")
            if block_type in _HIDDEN_BLOCKS:
                continue
            if block_type == "text" and isinstance(block.get("text"), str):
                text.add(block["text"], "\n\n")
            elif block_type in ("image", "document"):
                text.add(_placeholder(block), "\n\n")
            elif block_type == "tool_use":
                flush()
                self._tool_use(out, role, block)
            elif block_type == "tool_result":
                flush()
                self._tool_result(out, role, block)
        flush()
        return True

    def _tool_use(self, out: LineRecords, role: str, block: Mapping[str, Any]) -> None:
        tool = bounded_field(block.get("name"))
        call_id = bounded_field(block.get("id"))
        if tool is not None and call_id is not None:
            self._tools[call_id] = tool
        tool_input = block.get("input")
        paths, command = claude_tool_effects(tool or "", tool_input)
        out.add(
            "tool_use",
            role,
            tool=tool,
            tool_input=input_excerpt(tool_input),
            call_id=call_id,
            paths=paths,
            command=command,
        )

    def _tool_result(self, out: LineRecords, role: str, block: Mapping[str, Any]) -> None:
        call_id = bounded_field(block.get("tool_use_id"))
        content = block.get("content")
        text = BoundedText()
        if isinstance(content, str):
            text.add(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, Mapping):
                    continue
                if part.get("type") == "text" and isinstance(part.get("text"), str):
                    text.add(part["text"])
                elif part.get("type") in ("image", "document"):
                    text.add(_placeholder(part))
        out.add(
            "tool_result",
            role,
            text.text(),
            tool=self._tools.get(call_id) if call_id is not None else None,
            call_id=call_id,
            error=block.get("is_error") is True,
        )


def _placeholder(block: Mapping[str, Any]) -> str:
    """``[image: image/png]`` for an image block (its data is never kept), ``[document: ...]``."""
    source = block.get("source")
    media = bounded_field(source.get("media_type"), 100) if isinstance(source, Mapping) else None
    name = "image" if block.get("type") == "image" else "document"
    return f"[{name}: {media}]" if media else f"[{name}]"
