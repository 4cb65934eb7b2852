"""What a transcript reader hands back: bounded records, one batch per read, and the bounds.

Every reader of an agent's transcript (Claude Code, Codex CLI) returns the same
:class:`TranscriptBatch` of :class:`TranscriptRecord`. A record never holds much: each text is cut
to :data:`TEXT_LIMIT` characters with a marker saying how much was cut, a tool's input to
:data:`TOOL_INPUT_LIMIT`, identifiers and paths to fixed lengths, so a 1 MB tool result becomes an
8,000-character excerpt. Text is kept literally, except for what no store can hold: NUL characters
and lone surrogates become U+FFFD.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, TypeAlias

__all__ = [
    "FIELD_LIMIT",
    "MAX_PATHS",
    "PATH_LIMIT",
    "TEXT_LIMIT",
    "TOOL_INPUT_LIMIT",
    "BoundedText",
    "LineRecords",
    "RecordContext",
    "RecordKind",
    "TranscriptBatch",
    "TranscriptRecord",
    "bounded",
    "bounded_field",
    "input_excerpt",
    "line_uid",
    "parse_timestamp",
]

#: Characters of text a record keeps (a message, a tool result, a summary); the rest is cut.
TEXT_LIMIT: Final = 8_000
#: Characters of a tool's input (as compact JSON) a record keeps.
TOOL_INPUT_LIMIT: Final = 2_000
#: Characters of one path (or shell command) a record keeps; a longer path is cut with a marker.
PATH_LIMIT: Final = 4_096
#: Paths one record names at most.
MAX_PATHS: Final = 64
#: Characters of an identifier, a branch, a model or a tool name; a longer one is dropped (None).
FIELD_LIMIT: Final = 512

_SURROGATE: Final = re.compile("[\ud800-\udfff]")

#: What a record is. ``summary`` is a conversation summary (Claude Code's ``summary`` record and
#: its compaction summary, Codex's ``compacted``); ``system`` is a harness or developer message.
RecordKind: TypeAlias = Literal[
    "user_message", "assistant_message", "tool_use", "tool_result", "summary", "system"
]


@dataclass(frozen=True, slots=True)
class TranscriptRecord:
    """One thing said or done in an agent's session, bounded.

    Attributes:
        uid: stable id, unique within the session: the line's own id (Claude Code's ``uuid``),
            else ``sha256:`` and a hash of the line; a line holding several records adds ``/1``,
            ``/2``, ... to the id from its second record on. Reading the same bytes again gives the
            same uids, so a store that keeps uids stores nothing twice.
        kind: what it is (see :data:`RecordKind`).
        role: ``user``, ``assistant``, ``developer``, ``system`` as the transcript says, or None.
        text: the text, at most :data:`TEXT_LIMIT` characters plus a cut marker; empty for a tool
            call (its input is in ``tool_input``). Images appear as ``[image: media/type]``;
            thinking and reasoning never appear.
        tool: the tool's name for ``tool_use`` (and ``tool_result`` when its call was in the same
            batch).
        tool_input: the tool's input as compact JSON (or its raw text), at most
            :data:`TOOL_INPUT_LIMIT` characters plus a cut marker.
        call_id: the id joining a ``tool_use`` to its ``tool_result``.
        paths: files the tool writes (Edit, Write, MultiEdit, NotebookEdit, Codex's apply_patch).
        command: the shell command of a shell tool (Bash, Codex's shell tools).
        error: a tool result the tool reported as failed.
        timestamp: when it was written (timezone-aware), if the line says.
        session_id: the agent's session id.
        cwd: the agent's working directory.
        git_branch: the branch the agent was on.
        sidechain: said inside a subagent (Claude Code's ``isSidechain``, a Codex subagent's file).
        meta: put there by the harness, not typed by the person (Claude Code's ``isMeta``, Codex's
            injected environment and instructions, developer messages).
        model: the model that wrote an assistant record, if known.
        line_offset: byte offset in the file of the line it came from.
    """

    uid: str
    kind: RecordKind
    role: str | None
    text: str
    line_offset: int
    tool: str | None = None
    tool_input: str | None = None
    call_id: str | None = None
    paths: tuple[str, ...] = ()
    command: str | None = None
    error: bool = False
    timestamp: datetime | None = None
    session_id: str | None = None
    cwd: str | None = None
    git_branch: str | None = None
    sidechain: bool = False
    meta: bool = False
    model: str | None = None


@dataclass(frozen=True, slots=True)
class TranscriptBatch:
    """What one read of a transcript found.

    Attributes:
        records: the records of the lines read, in file order.
        next_offset: byte offset just after the last complete line read: pass it as ``offset`` to
            read only what comes after. A torn last line (no newline yet) is not read: the next
            read picks it up once it is complete.
        lines: complete lines read (blank ones included).
        skipped: lines read that gave nothing: not JSON, not an object, a record type or shape
            this reader does not know, or longer than the line bound. Never an error.
        size: the file's size when it was opened. Smaller than the ``offset`` asked for means the
            file was truncated or replaced: read it again from 0 (the uids make that safe).
        at_end: everything complete in the file was read; False when ``max_bytes`` stopped the
            read first (call again from ``next_offset``).
    """

    records: list[TranscriptRecord]
    next_offset: int
    lines: int
    skipped: int
    size: int
    at_end: bool


def _clean(text: str) -> str:
    """``text`` with NUL characters and lone surrogates (which no store keeps) replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    return text


class BoundedText:
    """Text gathered piece by piece that keeps at most ``limit`` characters and counts the rest."""

    __slots__ = ("_kept", "_limit", "_pieces", "_total")

    def __init__(self, limit: int = TEXT_LIMIT) -> None:
        self._limit = limit
        self._pieces: list[str] = []
        self._kept = 0
        self._total = 0

    def add(self, piece: str, separator: str = "\n") -> None:
        """Append ``piece`` (after ``separator`` when something came before)."""
        if self._total and separator:
            self._take(separator)
        self._take(piece)

    def _take(self, piece: str) -> None:
        self._total += len(piece)
        room = self._limit - self._kept
        if room > 0:
            kept = piece[:room]
            self._pieces.append(kept)
            self._kept += len(kept)

    def __bool__(self) -> bool:
        return self._total > 0

    def text(self) -> str:
        """The text kept, with a marker naming how many characters were cut."""
        kept = _clean("".join(self._pieces))
        cut = self._total - self._kept
        return f"{kept}… [{cut:,} more characters cut]" if cut else kept


def bounded(text: str, limit: int = TEXT_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with a marker when longer (see :class:`BoundedText`)."""
    out = BoundedText(limit)
    out.add(text)
    return out.text()


def bounded_field(value: object, limit: int = FIELD_LIMIT) -> str | None:
    """``value`` when it is a non-empty string of at most ``limit`` characters, else None."""
    if isinstance(value, str) and value and len(value) <= limit:
        return _clean(value)
    return None


def input_excerpt(value: object) -> str | None:
    """A tool's input as compact JSON (a string as it is), cut to :data:`TOOL_INPUT_LIMIT`."""
    if value is None:
        return None
    if isinstance(value, str):
        return bounded(value, TOOL_INPUT_LIMIT)
    try:
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return None
    return bounded(encoded, TOOL_INPUT_LIMIT)


def line_uid(own_id: str | None, line: bytes, index: int) -> str:
    """The uid of the ``index``-th record of ``line``: its own id, else a hash of the line."""
    base = own_id if own_id is not None else "sha256:" + hashlib.sha256(line).hexdigest()[:32]
    return base if index == 0 else f"{base}/{index}"


def parse_timestamp(value: object) -> datetime | None:
    """An ISO 8601 timestamp (``2025-01-01T10:00:00.000Z``) as an aware datetime, else None."""
    if not isinstance(value, str) or not 10 <= len(value) <= 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RecordContext:
    """What the records of one line share (the line's own fields, or the session's)."""

    timestamp: datetime | None = None
    session_id: str | None = None
    cwd: str | None = None
    git_branch: str | None = None
    sidechain: bool = False
    meta: bool = False
    model: str | None = None


class LineRecords:
    """The records of one line, numbered for their uids as they are added."""

    __slots__ = ("_context", "_offset", "_own_id", "_raw", "records")

    def __init__(self, offset: int, raw: bytes, own_id: str | None, context: RecordContext) -> None:
        self._offset = offset
        self._raw = raw
        self._own_id = own_id
        self._context = context
        self.records: list[TranscriptRecord] = []

    def add(
        self,
        kind: RecordKind,
        role: str | None,
        text: str = "",
        *,
        tool: str | None = None,
        tool_input: str | None = None,
        call_id: str | None = None,
        paths: tuple[str, ...] = (),
        command: str | None = None,
        error: bool = False,
        meta: bool = False,
    ) -> None:
        """Add a record of this line (``meta`` adds to the line's own meta flag)."""
        c = self._context
        self.records.append(
            TranscriptRecord(
                uid=line_uid(self._own_id, self._raw, len(self.records)),
                kind=kind,
                role=role,
                text=text,
                line_offset=self._offset,
                tool=tool,
                tool_input=tool_input,
                call_id=call_id,
                paths=paths[:MAX_PATHS],
                command=command,
                error=error,
                timestamp=c.timestamp,
                session_id=c.session_id,
                cwd=c.cwd,
                git_branch=c.git_branch,
                sidechain=c.sidechain,
                meta=c.meta or meta,
                model=c.model if role == "assistant" else None,
            )
        )
