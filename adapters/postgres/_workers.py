"""The worker threads of a :class:`Database`: one per pooled connection, kept for the database's life."""

from __future__ import annotations

import collections
import contextlib
import queue
import threading
import time
from typing import Any, Final, final

import outcome
import trio

from ._worker_call import WorkerCall

__all__ = ["Workers"]

_STOP: Final = None


@final
class Workers:
    """The worker threads: one per pooled connection, started with the database and kept for its life.

    Calls are handed over through one ``queue.SimpleQueue``; the trio side never submits more calls than
    there are threads (``Database._threads``), so a call never waits for a thread. Results go back
    through one ``run_sync_soon`` per batch: a worker appends the finished call to a deque and wakes trio
    only when no wakeup is pending yet, so results that finish while trio is busy cost no extra wakeup
    (and no extra contention for the interpreter lock). A long-lived thread per connection costs less per
    call than a thread cache's hand-over and keeps the connection's thread warm.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: queue.SimpleQueue[WorkerCall[Any] | None] = queue.SimpleQueue()
        self._done: collections.deque[tuple[WorkerCall[Any], outcome.Outcome[Any]]] = (
            collections.deque()
        )
        self._wakeup_pending = False
        self._threads: list[threading.Thread] = []
        self._token: trio.lowlevel.TrioToken | None = None

    def start(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        for i in range(self._size):
            thread = threading.Thread(target=self._run, name=f"scribe-pg-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, call: WorkerCall[Any]) -> None:
        self._jobs.put(call)

    def stop(self, timeout: float) -> None:
        """Let every thread finish its queued calls and exit; wait for them (at most ``timeout``)."""
        for _ in self._threads:
            self._jobs.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def _run(self) -> None:
        jobs = self._jobs
        done = self._done
        while (call := jobs.get()) is not None:
            done.append((call, outcome.capture(call.work)))
            del call
            if not self._wakeup_pending:
                self._wakeup_pending = True
                assert self._token is not None
                with contextlib.suppress(trio.RunFinishedError):
                    self._token.run_sync_soon(self._deliver)

    def _deliver(self) -> None:
        # Cleared before draining: a result appended after this line either is drained below or
        # schedules a new wakeup.
        self._wakeup_pending = False
        done = self._done
        while done:
            call, result = done.popleft()
            call.on_work_done(result)
