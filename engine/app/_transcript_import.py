"""Incremental import of agents' transcripts into memory, in the daemon.

A hook (``PreCompact``, ``Stop``, ``SessionEnd``) calls :meth:`TranscriptImporter.schedule`, which
queues the transcript and returns at once; one worker in the daemon's nursery imports the queue in
order (a transcript queued again while it waits is queued once). ``scribe import`` calls
:meth:`TranscriptImporter.import_file`, which imports at once and answers the counts. Either way
one transcript is imported by one task at a time.

An import reads from the offset the last one stopped at (a fact ``transcript_offset`` of the
memory session :data:`OFFSETS_SESSION`, keyed by the session, the agent and the path), in windows
of ``max_bytes`` in a worker thread, turns each window's records into memory
(:mod:`._transcript_memory`: scrubbed, bounded), stores them, then saves the offset. A torn last
line is left for the next import; a file smaller than the offset (truncated, or replaced) is read
again from 0. Messages carry their record's uid as source id, so a lost offset or a second import
of the same lines stores nothing twice.

A failed import is counted and logged (once a minute per transcript) and never stops the worker;
the next import of the transcript goes on from the last offset saved.

Imported messages are stored without vectors (``embed=False``), so an import never waits on the
embedder; the stack's background embedder (:class:`adapters.EmbeddingBackfill`) embeds them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, final

import trio

import adapters

from .._core._construction import NoPublicConstructor
from .._core._errors import InvalidArgumentError
from .._core._limits import NAME_MAX, PATH_MAX
from .._core._log_throttle import LogThrottle
from .._core._privacy import Privacy
from .._ports._memory_store import MemoryStore
from ._read_ahead import ReadAhead, unwrapped
from ._transcript_counts import ImportCounts, ImportReport, ImportStatistics
from ._transcript_memory import AGENTS, SUMMARY_FACT, Agent, TranscriptMemory, to_memory

__all__ = [
    "AGENT_SESSION_PREFIX",
    "DRAIN_TIMEOUT",
    "OFFSETS_SESSION",
    "OFFSET_FACT",
    "QUEUE_SIZE",
    "READERS",
    "WINDOW_BYTES",
    "TranscriptImporter",
    "open_transcript_importer",
]

#: The memory session holding every transcript's import offset.
OFFSETS_SESSION: Final = "transcripts"
#: The memory session of a conversation held by no Scribe session: this, then the agent's own id.
AGENT_SESSION_PREFIX: Final = "agent:"
#: The fact type of an import offset.
OFFSET_FACT: Final = "transcript_offset"
#: Transcripts waiting to be imported at most (a schedule past it is dropped and counted: the
#: next one of that transcript imports what it missed).
QUEUE_SIZE: Final = 1024
#: Bytes one read of a transcript covers.
WINDOW_BYTES: Final = 4 * 1024 * 1024
#: How long a closing importer lets the queue drain before it abandons what is left.
DRAIN_TIMEOUT: Final = 5.0

_log = logging.getLogger(__name__)

Reader = Callable[..., adapters.TranscriptBatch]
#: The reader of each agent's transcripts.
READERS: Final[dict[str, Reader]] = {
    "claude-code": adapters.read_claude_transcript,
    "codex": adapters.read_codex_rollout,
}
#: The repository (work tree root) of a Scribe session, or None.
RepoOf = Callable[[str], Awaitable[str | None]]


_Key = tuple[str, str, str]  # (session id, agent, path)


def offset_key(session_id: str, agent: str, path: str) -> str:
    """The fact key of a transcript's import offset in a session."""
    digest = hashlib.sha256(f"{session_id}\0{agent}\0{path}".encode()).hexdigest()
    return "o-" + digest[:40]


def _memory_session(session_id: str | None, agent_session_id: str | None) -> str | None:
    """Where a conversation's memory goes: its Scribe session, else :data:`AGENT_SESSION_PREFIX`
    and the agent's session id (an agent working outside any work tree)."""
    if session_id is not None or agent_session_id is None:
        return session_id
    return AGENT_SESSION_PREFIX + agent_session_id


def _check(session_id: object, agent: object, path: object) -> tuple[str, Agent, str]:
    if not isinstance(session_id, str) or not session_id or len(session_id) > NAME_MAX:
        raise InvalidArgumentError(f"session_id must be 1-{NAME_MAX} characters")
    if agent not in AGENTS:
        raise InvalidArgumentError(f"unknown agent {agent!r:.50}; agents: {', '.join(AGENTS)}")
    if not isinstance(path, str) or not os.path.isabs(path) or "\0" in path:
        raise InvalidArgumentError(f"a transcript path must be absolute, not {path!r:.200}")
    if len(path) > PATH_MAX:
        raise InvalidArgumentError(f"a transcript path is at most {PATH_MAX} characters")
    return session_id, agent, path


@final
class TranscriptImporter(metaclass=NoPublicConstructor):
    """Imports transcripts into memory; get one from :func:`open_transcript_importer`."""

    def __init__(
        self,
        memory: MemoryStore,
        privacy: Privacy,
        repo_of: RepoOf | None,
        max_bytes: int,
        send: trio.MemorySendChannel[tuple[_Key, str | None]],
    ) -> None:
        self._memory = memory
        self._privacy = privacy
        self._repo_of = repo_of
        self._max_bytes = max_bytes
        self._send = send
        self._pending: set[_Key] = set()
        self._locks: dict[tuple[str, str], trio.Lock] = {}
        self._repos: set[str] = set()
        self._throttle = LogThrottle(_log)
        self._scheduled = self._dropped = self._imports = self._errors = 0
        self._last_error: str | None = None
        self._counts = ImportCounts()
        self._worker_done = trio.Event()

    async def schedule(
        self, *, session_id: str | None, agent_session_id: str | None, path: str, agent: str
    ) -> None:
        """Queue an incremental import of the transcript at ``path`` into the memory of the Scribe
        session ``session_id`` (None: of the agent's session id, :data:`AGENT_SESSION_PREFIX`)
        and return at once. A transcript already waiting is not queued twice; with the queue
        full, the schedule is dropped and counted. Never raises for its arguments (this is the
        hook's path): an unknown agent, a path that is not absolute or a bad session id is
        logged and counted as an error.

        Cancellation: nothing is queued, or the import is queued whole.
        """
        await trio.lowlevel.checkpoint_if_cancelled()  # no schedule point: returns at once
        try:
            key = _check(_memory_session(session_id, agent_session_id), agent, path)
        except InvalidArgumentError as exc:
            self._errors += 1
            self._last_error = str(exc)[:1000]
            self._throttle.failed("arguments", "transcript import refused: %s", exc)
            return
        if key in self._pending:
            return
        try:
            self._send.send_nowait((key, agent_session_id))
        except trio.WouldBlock:
            self._dropped += 1
            self._throttle.failed(
                "queue",
                "transcript import queue full: %s not queued (its next import catches up)",
                path,
            )
            return
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self._dropped += 1
            return
        self._pending.add(key)
        self._scheduled += 1

    async def import_file(
        self,
        *,
        session_id: str,
        path: str,
        agent: str,
        agent_session_id: str | None = None,
        byte_budget: int | None = None,
    ) -> ImportReport:
        """Import what the transcript at ``path`` holds past its last import, now; answers what
        this import did. With ``byte_budget``, it stops after the window that reads past that
        many bytes (``done`` is then False: call again).

        Raises:
            InvalidArgumentError: as :meth:`schedule`.
            NoSuchFileError, NotRegularFileError, FileAccessError: the file cannot be read (a FIFO
                or a device is refused without blocking).
            DatabaseError, MemoryStoreError: the memory store failed.

        Cancellation: the read thread is abandoned; what earlier windows stored stays, with their
        offset, so the next import goes on from there.
        """
        sid, checked_agent, checked_path = _check(session_id, agent, path)
        lock = self._locks.setdefault((checked_agent, checked_path), trio.Lock())
        try:
            async with lock:
                try:
                    report = await unwrapped(
                        self._import(
                            sid, checked_agent, checked_path, agent_session_id, byte_budget
                        )
                    )
                except Exception as exc:
                    self._errors += 1
                    self._last_error = f"{checked_path}: {exc}"[:1000]
                    raise
                self._imports += 1
                self._throttle.recovered(checked_path, "transcript %s imports again", checked_path)
                return report
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop((checked_agent, checked_path), None)

    def statistics(self) -> ImportStatistics:
        """The counters since the importer opened."""
        return ImportStatistics(
            scheduled=self._scheduled,
            dropped=self._dropped,
            queued=len(self._pending),
            imports=self._imports,
            errors=self._errors,
            last_error=self._last_error,
            counts=self._counts,
        )

    async def _ensure_repo(self, session_id: str) -> None:
        """Make the session's memory session carry its repository (once per session)."""
        if self._repo_of is None or session_id in self._repos:
            return
        repo = await self._repo_of(session_id)
        if repo is not None:
            await self._memory.ensure_session(session_id, repo=repo)
        self._repos.add(session_id)
        if len(self._repos) > 10_000:
            self._repos.clear()

    async def _import(
        self,
        session_id: str,
        agent: Agent,
        path: str,
        agent_session_id: str | None,
        byte_budget: int | None,
    ) -> ImportReport:
        memory = self._memory
        key = offset_key(session_id, agent, path)
        saved = await memory.get_fact(OFFSETS_SESSION, OFFSET_FACT, key)
        kept: int | None = None
        if saved is not None and isinstance(saved.value, dict):
            value = saved.value.get("offset")
            kept = value if isinstance(value, int) and value >= 0 else None
        offset = kept or 0
        await self._ensure_repo(session_id)
        window = self._max_bytes if byte_budget is None else min(self._max_bytes, byte_budget)
        reader = functools.partial(READERS[agent], path, max_bytes=window)

        def read_window(at: int) -> tuple[adapters.TranscriptBatch, TranscriptMemory]:
            batch = reader(offset=at)
            return batch, to_memory(
                batch.records, agent=agent, agent_session_id=agent_session_id, privacy=self._privacy
            )

        total = ImportCounts()
        first_size: int | None = None
        size = 0
        done = False
        read = 0
        async with trio.open_nursery() as nursery:
            # The next window is read (and scrubbed) in a thread while this one is stored.
            ahead = ReadAhead(nursery, functools.partial(read_window, offset))
            while True:
                batch, mem = await ahead.get()
                if batch.size < offset:
                    if total.restarts:
                        done = True  # shrinking while read: the next import sees it settled
                        break
                    offset = 0
                    total += ImportCounts(restarts=1)
                    ahead = ReadAhead(nursery, functools.partial(read_window, 0))
                    continue
                if first_size is None:
                    first_size = batch.size
                size = batch.size
                read += batch.next_offset - offset
                done = (
                    batch.at_end or batch.next_offset == offset or batch.next_offset >= first_size
                )
                more = not done and (byte_budget is None or read < byte_budget)
                if more:
                    ahead = ReadAhead(nursery, functools.partial(read_window, batch.next_offset))
                offset = batch.next_offset
                total += await self._store(session_id, mem, batch)
                if offset != kept:
                    value = {
                        "session_id": session_id,
                        "agent": agent,
                        "path": path,
                        "offset": offset,
                    }
                    await memory.set_fact(OFFSETS_SESSION, OFFSET_FACT, key, value)
                    kept = offset
                if not more:
                    break
        return ImportReport(total, offset, size, done)

    async def _store(
        self, session_id: str, mem: TranscriptMemory, batch: adapters.TranscriptBatch
    ) -> ImportCounts:
        """Store one window's memory; what it did."""
        # Stored at once without vectors: the stack's background embedder gives them theirs.
        stored = (
            await self._memory.add_messages(session_id, mem.messages, embed=False)
            if mem.messages
            else []
        )
        for fact_key, text in mem.summaries:
            await self._memory.set_fact(session_id, SUMMARY_FACT, fact_key, text)
        found = ImportCounts(
            lines=batch.lines,
            records=len(batch.records),
            stored=len(stored),
            duplicates=len(mem.messages) - len(stored),
            summaries=len(mem.summaries),
            skipped=batch.skipped,
            ignored=mem.ignored,
        )
        self._counts += found
        return found

    async def _work(self, receive: trio.MemoryReceiveChannel[tuple[_Key, str | None]]) -> None:
        try:
            await self._serve_queue(receive)
        finally:
            self._worker_done.set()

    async def _serve_queue(
        self, receive: trio.MemoryReceiveChannel[tuple[_Key, str | None]]
    ) -> None:
        async with receive:
            async for (session_id, agent, path), agent_session_id in receive:
                self._pending.discard((session_id, agent, path))
                try:
                    await self.import_file(
                        session_id=session_id,
                        path=path,
                        agent=agent,
                        agent_session_id=agent_session_id,
                    )
                except Exception as exc:
                    self._throttle.failed(
                        path, "transcript %s not imported: %s", path, exc, exc=exc
                    )


@contextlib.asynccontextmanager
async def open_transcript_importer(
    memory: MemoryStore,
    *,
    privacy: Privacy | None = None,
    repo_of: RepoOf | None = None,
    max_bytes: int = WINDOW_BYTES,
    queue_size: int = QUEUE_SIZE,
) -> AsyncIterator[TranscriptImporter]:
    """A transcript importer with its worker running for the duration of the block.

    Args:
        memory: where messages, summaries and offsets are stored.
        privacy: what scrubs every text first (None: ``engine.Privacy()``, the defaults).
        repo_of: the repository of a Scribe session, given to its memory session (None: none).
        max_bytes: bytes one read covers.
        queue_size: transcripts waiting at most.

    Cancellation: on the way out the queue is given :data:`DRAIN_TIMEOUT` seconds to drain, then
    what is left is abandoned (each transcript's next import catches up from its offset).
    """
    if max_bytes < 1 or queue_size < 1:
        raise InvalidArgumentError("max_bytes and queue_size must be >= 1")
    send, receive = trio.open_memory_channel[tuple[_Key, str | None]](queue_size)
    importer = TranscriptImporter._create(memory, privacy or Privacy(), repo_of, max_bytes, send)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(importer._work, receive)
        try:
            yield importer
        finally:
            send.close()
            with trio.move_on_after(DRAIN_TIMEOUT) as drained:
                drained.shield = True
                await importer._worker_done.wait()
            nursery.cancel_scope.cancel()
