"""The summary pipeline: a background service that folds new worklog entries into summaries.

Capture never waits for it: :meth:`SummaryPipeline.request_nowait` never blocks. Requests go through a
bounded trio memory channel; requests for a session already queued are merged, and when the channel is
full the request waits in an overflow list the workers drain, so nothing is lost and nothing blocks.
All work is admitted through the engine's ``summarizer`` gate at LOW priority.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, final

import trio

from .._core._errors import InvalidArgumentError
from .._core._log_throttle import LogThrottle
from .._core._priority import Priority
from .._core._privacy import Privacy
from .._ports._summarizer import Summarizer
from .._ports._summary_record import Summary
from .._ports._worklog_store import WorklogStore

if TYPE_CHECKING:
    from .._core._engine import Engine

__all__ = ["SummaryPipeline", "SummaryPipelineStatistics"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SummaryPipelineStatistics:
    """Counters of a :class:`SummaryPipeline`.

    Attributes:
        queued: sessions waiting for a summary now.
        requests: requests received (merged ones included).
        merged: requests merged into one already queued.
        overflowed: requests that found the channel full and waited in the overflow list.
        summaries: summaries stored.
        skipped: requests that found nothing new to summarize.
        errors: summaries that failed (the next request tries again).
        last_error: the last failure, if any.
    """

    queued: int
    requests: int
    merged: int
    overflowed: int
    summaries: int
    skipped: int
    errors: int
    last_error: str | None


@final
class SummaryPipeline:
    """Turns worklogs into summaries in the background. Run :meth:`run` as an engine service.

    Args:
        engine: the engine (its ``summarizer`` gate admits the work; summaries are published on
            ``session.summary``).
        store: where entries are read and summaries stored.
        summarizer: what folds entries into a summary.
        buffer: the channel's capacity.
        min_interval: the least seconds between two non-final summaries of one session (requests in
            between are merged).
        workers: how many summaries may be made at once (the gate may allow fewer).
        on_summary: called with every stored summary (the context provider's write-through).
        privacy: how each summary's text is scrubbed before it is stored or published (default:
            ``<private>`` text removed, secrets redacted).
    """

    def __init__(
        self,
        engine: Engine,
        store: WorklogStore,
        summarizer: Summarizer,
        *,
        buffer: int = 64,
        min_interval: float = 2.0,
        workers: int = 2,
        on_summary: Callable[[Summary], None] | None = None,
        privacy: Privacy | None = None,
    ) -> None:
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
            raise InvalidArgumentError(f"buffer must be an int >= 1, not {buffer!r}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InvalidArgumentError(f"workers must be an int >= 1, not {workers!r}")
        if not isinstance(min_interval, int | float) or not min_interval >= 0:
            raise InvalidArgumentError(f"min_interval must be a number >= 0, not {min_interval!r}")
        self._engine = engine
        self._store = store
        self._summarizer = summarizer
        self._min_interval = float(min_interval)
        self._workers = workers
        self._on_summary = on_summary
        self._privacy = Privacy() if privacy is None else privacy
        self._send, self._recv = trio.open_memory_channel[str](buffer)
        self._pending: dict[str, bool] = {}  # session id -> final requested
        self._overflow: deque[str] = deque()
        self._delayed: set[str] = set()
        self._last_done: dict[str, float] = {}
        self._latest: dict[str, Summary] = {}
        self._busy: dict[str, trio.Event] = {}
        self._idle = trio.Event()
        self._idle.set()
        self._nursery: trio.Nursery | None = None
        self._requests = 0
        self._merged = 0
        self._overflowed = 0
        self._summaries = 0
        self._skipped = 0
        self._errors = 0
        self._log = LogThrottle(_log)
        self._last_error: str | None = None

    # -- requests --------------------------------------------------------------------------------

    def request_nowait(self, session_id: str, *, final: bool = False) -> None:
        """Ask for the session's summary to be brought up to date (``final``: the session ended).

        Never blocks and never fails for a busy pipeline.
        """
        self._requests += 1
        self._idle = trio.Event() if self._idle.is_set() else self._idle
        if session_id in self._pending:
            self._merged += 1
            if final:
                self._pending[session_id] = True
                if session_id in self._delayed:
                    self._delayed.discard(session_id)
                    self._enqueue(session_id)
            return
        self._pending[session_id] = final
        due = self._last_done.get(session_id, -1e18) + self._min_interval
        if not final and trio.current_time() < due and self._nursery is not None:
            self._delayed.add(session_id)
            self._nursery.start_soon(self._release_at, session_id, due)
            return
        self._enqueue(session_id)

    def _enqueue(self, session_id: str) -> None:
        try:
            self._send.send_nowait(session_id)
        except trio.WouldBlock:
            self._overflowed += 1
            self._overflow.append(session_id)

    async def _release_at(self, session_id: str, due: float) -> None:
        await trio.sleep_until(due)
        if session_id in self._delayed:
            self._delayed.discard(session_id)
            self._enqueue(session_id)

    @property
    def summarizer(self) -> Summarizer:
        """What folds entries into summaries."""
        return self._summarizer

    def latest(self, session_id: str) -> Summary | None:
        """The newest summary this pipeline made or loaded for the session (no I/O)."""
        return self._latest.get(session_id)

    def forget(self, session_id: str) -> None:
        """Drop what is kept in memory about the session (after it ended and was summarized)."""
        if session_id not in self._pending and session_id not in self._busy:
            self._latest.pop(session_id, None)
            self._last_done.pop(session_id, None)

    async def wait_idle(self) -> None:
        """Return once no request is queued or running. Cancellation just ends the wait."""
        while not (not self._pending and not self._busy):
            await self._idle.wait()
        await trio.lowlevel.checkpoint()

    # -- the service -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve requests until cancelled (run it as an engine service).

        Cancellation stops the workers; a summary being made is abandoned before it is stored or after,
        never half-stored, and its session is asked for again by the next request.
        """
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                for i in range(self._workers):
                    nursery.start_soon(self._worker, name=f"summarizer worker {i}")
                await trio.sleep_forever()
            finally:
                self._nursery = None

    async def _next(self) -> str:
        # A worker blocked in receive() means the channel is empty, and the overflow list only grows
        # while the channel is full, so checking the overflow first and then waiting on the channel
        # misses nothing. The check comes after the checkpoint: another worker may take the last one
        # while this one is at it.
        await trio.lowlevel.checkpoint()
        if self._overflow:
            return self._overflow.popleft()
        return await self._recv.receive()

    async def _worker(self) -> None:
        gate = self._engine.gate("summarizer")
        while True:
            sid = await self._next()
            if sid not in self._pending or sid in self._busy:
                if sid in self._busy and sid in self._pending:
                    # Another worker is summarizing it: try again when that one is done.
                    await self._busy[sid].wait()
                    if sid in self._pending and sid not in self._delayed:
                        self._enqueue(sid)
                continue
            final = self._pending.pop(sid)
            done = self._busy[sid] = trio.Event()
            try:
                async with gate.acquire(Priority.LOW):
                    await self._summarize(sid, final)
                self._log.recovered("summary", "summaries are made again (session %s)", sid)
            except Exception as exc:
                self._errors += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                self._log.failed(
                    "summary",
                    "summary of session %s failed: %s",
                    sid,
                    self._last_error,
                    exc=exc,
                    extra={"session": sid},
                )
                self._engine.publish_nowait(
                    "session.summary",
                    {"error": self._last_error, "final": final},
                    session_id=sid,
                )
            finally:
                del self._busy[sid]
                done.set()
                self._last_done[sid] = trio.current_time()
                if not self._pending and not self._busy:
                    self._idle.set()

    def _scrubbed(self, summary: Summary) -> Summary:
        """``summary`` with every text in it scrubbed (a summarizer may quote what it read)."""
        scrub = self._privacy.scrub_value
        return replace(
            summary,
            key_ideas=scrub(summary.key_ideas),
            decisions=scrub(summary.decisions),
            progress=scrub(summary.progress),
            next_steps=scrub(summary.next_steps),
            files_modified=scrub(summary.files_modified),
            metadata=scrub(dict(summary.metadata)),
        )

    async def _summarize(self, sid: str, final: bool) -> None:
        previous = self._latest.get(sid)
        if previous is None:
            previous = await self._store.latest_summary(sid)
        after = previous.last_seq if previous is not None else 0
        entries = await self._store.entries(sid, after_seq=after)
        if not entries and (not final or (previous is not None and previous.final)):
            self._skipped += 1
            if previous is not None:
                self._latest[sid] = previous
            return
        started = time.perf_counter()
        summary = await self._summarizer.summarize(sid, previous, entries, final=final)
        if summary.session_id != sid:
            raise InvalidArgumentError("the summarizer returned a summary of another session")
        summary = self._scrubbed(summary)
        await self._store.save_summary(summary)
        self._latest[sid] = summary
        self._summaries += 1
        if self._on_summary is not None:
            self._on_summary(summary)
        self._engine.publish_nowait(
            "session.summary",
            {
                "version": summary.version,
                "final": summary.final,
                "last_seq": summary.last_seq,
                "elapsed": time.perf_counter() - started,
            },
            session_id=sid,
        )

    def statistics(self) -> SummaryPipelineStatistics:
        """A snapshot of the pipeline's counters."""
        return SummaryPipelineStatistics(
            queued=len(self._pending),
            requests=self._requests,
            merged=self._merged,
            overflowed=self._overflowed,
            summaries=self._summaries,
            skipped=self._skipped,
            errors=self._errors,
            last_error=self._last_error,
        )
