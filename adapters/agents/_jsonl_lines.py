"""Reading a JSON Lines file that its writer is still appending to: complete lines only, bounded.

An agent appends one JSON object and a newline per record and never rewrites what it wrote, so a
reader can stop anywhere and go on later from a byte offset. :class:`JsonlScan` reads the lines
between an offset and the end of the file as it was when opened, with these guarantees:

- only a regular file is opened (a FIFO, socket or device is refused before it could block);
- a line without its newline yet (the writer is mid-write) is never read: the scan stops before it;
- a line longer than :data:`MAX_LINE_BYTES` is passed over without ever being held whole (never
  more than that bound plus one read chunk in memory) and reported as oversized;
- at most ``max_bytes`` are read past the offset, except that the first line is always read to its
  end so every scan makes progress;
- an offset that is not at the start of a line (a stale offset) is moved past the rest of that
  line, which is reported as a line that could not be read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from engine import InvalidArgumentError

from ..fs._errors import os_errors
from ..fs._regular import open_regular
from ._transcript_records import TranscriptBatch, TranscriptRecord

__all__ = [
    "DEFAULT_BATCH_BYTES",
    "MAX_LINE_BYTES",
    "JsonlScan",
    "LineParser",
    "RawLine",
    "decode_object",
    "open_jsonl",
    "read_batch",
    "read_head_line",
]

#: A line longer than this many bytes is skipped (never held whole).
MAX_LINE_BYTES: Final = 16 * 1024 * 1024
#: Bytes one read covers when the caller gives no ``max_bytes``.
DEFAULT_BATCH_BYTES: Final = 64 * 1024 * 1024
_CHUNK: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RawLine:
    """One complete line: where it starts and its bytes (newline and a CR before it removed), or
    None when it was longer than :data:`MAX_LINE_BYTES` or the rest of a line begun before the
    offset."""

    offset: int
    data: bytes | None


def open_jsonl(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Open the regular file at ``path`` for reading; returns its descriptor (the caller closes it)
    and its size now.

    Raises:
        NoSuchFileError: it does not exist.
        NotRegularFileError: a FIFO, socket or device (never opened).
        FileAccessError: a directory, or the OS refused.
    """
    with os_errors():
        real = os.path.realpath(Path(path))
    fd = open_regular(real, os.O_RDONLY)
    try:
        with os_errors():
            return fd, os.fstat(fd).st_size
    except BaseException:
        os.close(fd)
        raise


def read_head_line(fd: int, limit: int) -> bytes | None:
    """The file's first line when it is complete within its first ``limit`` bytes, else None."""
    with os_errors():
        head = os.pread(fd, limit, 0)
    end = head.find(b"\n")
    return head[:end].removesuffix(b"\r") if end >= 0 else None


class JsonlScan:
    """The complete lines of an open file from ``offset``; iterate once, then read
    :attr:`next_offset` and :attr:`at_end`.

    Args:
        fd: a descriptor open for reading (see :func:`open_jsonl`).
        size: how far to read: the file's size when it was opened.
        offset: where to start (a byte offset, normally a previous ``next_offset``).
        max_bytes: how many bytes past ``offset`` to read at most (see the module's docstring).

    Raises:
        InvalidArgumentError: a negative offset, or a ``max_bytes`` below 1.
    """

    def __init__(self, fd: int, size: int, offset: int, max_bytes: int | None) -> None:
        if offset < 0:
            raise InvalidArgumentError(f"offset must be >= 0, not {offset}")
        if max_bytes is not None and max_bytes < 1:
            raise InvalidArgumentError(f"max_bytes must be >= 1, not {max_bytes}")
        self._fd = fd
        self._size = size
        self._offset = offset
        self._stop = min(size, offset + (DEFAULT_BATCH_BYTES if max_bytes is None else max_bytes))
        #: Offset just after the last complete line yielded.
        self.next_offset = offset
        #: The scan read everything complete up to ``size`` (only a torn line may be left).
        self.at_end = offset >= size

    def _read(self, count: int, at: int) -> bytes:
        with os_errors():
            return os.pread(self._fd, count, at)

    def __iter__(self) -> Iterator[RawLine]:
        pos = start = self._offset
        if pos >= self._size:
            return
        # a stale offset in the middle of a line: what is left of that line cannot be read
        discarding = pos > 0 and self._read(1, pos - 1) != b"\n"
        buf = bytearray()
        progressed = False
        while True:
            limit = self._stop if progressed else self._size
            if pos >= limit:
                self.at_end = pos >= self._size
                return
            chunk = self._read(min(_CHUNK, limit - pos), pos)
            if not chunk:  # the file shrank while it was read
                self.at_end = True
                return
            chunk_start, pos, i = pos, pos + len(chunk), 0
            while (newline := chunk.find(b"\n", i)) >= 0:
                end = chunk_start + newline + 1
                if progressed and end > self._stop:
                    return
                data: bytes | None = None
                if not discarding:
                    buf += chunk[i:newline]
                    if len(buf) <= MAX_LINE_BYTES:
                        data = bytes(buf).removesuffix(b"\r")
                yield RawLine(start, data)
                buf.clear()
                discarding, progressed = False, True
                start = self.next_offset = end
                i = newline + 1
            if not discarding:
                buf += chunk[i:]
                if len(buf) > MAX_LINE_BYTES:
                    buf.clear()
                    discarding = True


def decode_object(data: bytes) -> dict[str, Any] | None:
    """The JSON object a line holds (invalid UTF-8 read as U+FFFD), else None."""
    try:
        value = json.loads(data.decode("utf-8", "replace"))
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


class LineParser(Protocol):
    """Turns the objects of one transcript format into records."""

    def begin(self, fd: int, offset: int) -> None:
        """Called once before the lines, with the open file and the offset the read starts at."""

    def parse(self, line: RawLine, obj: dict[str, Any]) -> list[TranscriptRecord] | None:
        """The records of one line's object; None when the line is of a kind it does not know."""


def read_batch(
    path: str | os.PathLike[str], offset: int, max_bytes: int | None, parser: LineParser
) -> TranscriptBatch:
    """Read the complete lines of ``path`` from ``offset`` through ``parser`` (see
    :class:`JsonlScan` for the bounds); a line that is not a JSON object, that the parser does not
    know or that is too long is counted in ``skipped``."""
    fd, size = open_jsonl(path)
    try:
        scan = JsonlScan(fd, size, offset, max_bytes)
        parser.begin(fd, offset)
        records: list[TranscriptRecord] = []
        lines = skipped = 0
        for line in scan:
            lines += 1
            if line.data is not None and not line.data.strip():
                continue
            obj = decode_object(line.data) if line.data is not None else None
            found = parser.parse(line, obj) if obj is not None else None
            if found is None:
                skipped += 1
            else:
                records.extend(found)
        return TranscriptBatch(records, scan.next_offset, lines, skipped, size, scan.at_end)
    finally:
        os.close(fd)
