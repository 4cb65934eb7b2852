"""The entry journal on disk: :class:`engine.EntryJournal` as one append-only JSON-lines file per session.

``<directory>/<session>.jsonl`` holds one entry a line (``seq``, ``kind``, ``created_at``, ``payload``),
written with ``O_APPEND`` and ``fsync``ed before :meth:`FileJournal.append` returns (the directory too
when the file is new). The directory is made mode 0700 and each file 0600: only the owner reads what
was captured. A torn last line (a crash mid-write) is skipped when read. Every disk operation runs in a
worker thread that is waited for (never abandoned), so an entry is either written or not.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final, TypeVar, final

import orjson
import trio

import engine
from engine import JournalError, WorklogEntry, check_journal_session

__all__ = ["FileJournal"]

T = TypeVar("T")

_SUFFIX: Final = ".jsonl"


@contextlib.contextmanager
def _journal_errors(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise JournalError(f"cannot {what}: {exc}") from exc


def _line(e: WorklogEntry) -> bytes:
    return (
        orjson.dumps(
            {"seq": e.seq, "kind": e.kind.value, "created_at": e.created_at, "payload": e.payload}
        )
        + b"\n"
    )


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@final
class FileJournal:
    """Per-session journals under ``directory`` (implements :class:`engine.EntryJournal`).

    Args:
        directory: where the journals live (made, mode 0700, when first written).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = trio.Lock()

    def __repr__(self) -> str:
        return f"<FileJournal in {self.directory}>"

    def path(self, session_id: str) -> Path:
        """The journal file of ``session_id``."""
        return self.directory / f"{check_journal_session(session_id)}{_SUFFIX}"

    async def append(self, session_id: str, entries: Sequence[WorklogEntry]) -> None:
        """Append ``entries`` to the session's file and fsync it.

        Raises:
            JournalError: the file could not be written (the cause says why).

        Cancellation: the write finishes in its worker thread, then the cancellation is delivered.
        """
        path = self.path(session_id)
        _same_session(session_id, entries)
        data = b"".join(_line(e) for e in entries)
        await self._run(self._append_sync, path, data, what=f"append to {path}")

    def _append_sync(self, path: Path, data: bytes) -> None:
        self._make_dir()
        new = not path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            _fsync_dir(self.directory)

    async def read(
        self, session_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[WorklogEntry]:
        """The session's entries with ``seq > after_seq``, ascending (a torn or unreadable line is
        skipped; of two lines with one seq, the later wins).

        Raises:
            JournalError: the file exists but cannot be read.

        Cancellation: the read finishes in its worker thread, then the cancellation is delivered.
        """
        path = self.path(session_id)
        limit = engine.check_optional_limit(limit)
        latest: dict[int, WorklogEntry] = await self._run(
            self._read_sync, session_id, path, what=f"read {path}"
        )
        out = [latest[s] for s in sorted(latest) if s > after_seq]
        return out if limit is None else out[:limit]

    @staticmethod
    def _read_sync(session_id: str, path: Path) -> dict[int, WorklogEntry]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return {}
        latest: dict[int, WorklogEntry] = {}
        for raw in data.splitlines():
            try:
                row = orjson.loads(raw)
                entry = WorklogEntry(
                    session_id, row["seq"], row["kind"], row["created_at"], row["payload"]
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, engine.InvalidArgumentError):
                continue  # a line torn by a crash mid-append
            latest[entry.seq] = entry
        return latest

    async def replace(self, session_id: str, entries: Sequence[WorklogEntry]) -> None:
        """Write ``entries`` as the whole file atomically (a temporary file renamed over it); an empty
        sequence removes it.

        Raises:
            JournalError: the file could not be written.

        Cancellation: as :meth:`append`.
        """
        if not entries:
            await self.remove(session_id)
            return
        path = self.path(session_id)
        _same_session(session_id, entries)
        data = b"".join(_line(e) for e in entries)
        await self._run(self._replace_sync, path, data, what=f"rewrite {path}")

    def _replace_sync(self, path: Path, data: bytes) -> None:
        self._make_dir()
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(self.directory)

    async def remove(self, session_id: str) -> None:
        """Remove the session's file (nothing happens when there is none).

        Raises:
            JournalError: the file exists but could not be removed.

        Cancellation: as :meth:`append`.
        """
        path = self.path(session_id)
        await self._run(self._remove_sync, path, what=f"remove {path}")

    def _remove_sync(self, path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(self.directory)

    async def sessions(self) -> list[str]:
        """The sessions with a journal file, sorted.

        Cancellation: as :meth:`append`.
        """
        return await self._run(self._sessions_sync, what=f"list {self.directory}")

    def _sessions_sync(self) -> list[str]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(n[: -len(_SUFFIX)] for n in names if n.endswith(_SUFFIX))

    def _make_dir(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    async def _run(self, fn: Callable[..., T], *args: object, what: str) -> T:
        # One disk operation at a time per journal, in a worker thread that is always waited for.
        async with self._lock:
            with trio.CancelScope(shield=True), _journal_errors(what):
                result = await trio.to_thread.run_sync(fn, *args)
        await trio.lowlevel.checkpoint_if_cancelled()
        return result


def _same_session(session_id: str, entries: Sequence[WorklogEntry]) -> None:
    for e in entries:
        if e.session_id != session_id:
            raise engine.InvalidArgumentError(
                f"entry of session {e.session_id!r} in the journal of {session_id!r}"
            )
