"""One call's trip to a worker thread and back, and how a trio cancellation reaches it there.

When the waiting trio task is cancelled, a canceller thread cancels the worker's statement on the server
(and repeats it until the worker is done, which covers a cancel arriving just before the statement does),
and the task waits for the worker to come back: a thread is never abandoned and never keeps its connection.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Generic, NoReturn, TypeVar, final

import outcome
import psycopg
import psycopg.errors
import trio

from ._cancel import FAST_CANCEL_PERIOD, FIRST_CANCEL_RETRY, next_cancel_retry

if TYPE_CHECKING:
    from ._database import Database

__all__ = ["CANCEL_ERRORS", "WorkerCall"]

T = TypeVar("T")

# While the server is known to be down, a call waits at most this long for a connection.
_UNAVAILABLE_ACQUIRE_TIMEOUT: Final = 0.25


class _NotStarted(Exception):
    """The call was cancelled before its statement was sent."""


#: What a worker's call raises when the cancel asked for by a trio cancellation took effect.
CANCEL_ERRORS: Final = (
    _NotStarted,
    psycopg.errors.QueryCanceled,
    psycopg.errors.InFailedSqlTransaction,
)


@final
class WorkerCall(Generic[T]):
    """One query's trip to a worker thread and back.

    The worker and the canceller thread coordinate through plain attributes written before they are read
    on the other side (``conn`` / ``cancel_requested`` and ``finished`` / ``cancel_requested``): under the
    GIL, each side sees at least one of the two writes, so a cancel request is never lost and the canceller
    never touches a connection after the worker is done with its statements.
    """

    __slots__ = (
        "_body",
        "_canceller_running",
        "_db",
        "_outcome",
        "_raise_cancel",
        "_task",
        "_token",
        "_waiting",
        "cancel_requested",
        "canceller_exited",
        "conn",
        "done",
        "finished",
    )

    def __init__(
        self, db: Database, body: Callable[[psycopg.Connection[Any], WorkerCall[T]], T]
    ) -> None:
        self._db = db
        self._body = body
        self._task = trio.lowlevel.current_task()
        self._token = trio.lowlevel.current_trio_token()
        self._waiting = False
        self._outcome: outcome.Outcome[T] | None = None
        self._canceller_running = False
        self._raise_cancel: Callable[[], object] | None = None
        # shared with the threads
        self.conn: psycopg.Connection[Any] | None = None
        self.cancel_requested = False
        self.finished = False
        self.done: threading.Event | None = None
        self.canceller_exited: threading.Event | None = None

    # -- worker thread ----------------------------------------------------------------------------

    def work(self) -> T:
        db = self._db
        timeout = _UNAVAILABLE_ACQUIRE_TIMEOUT if db._unavailable else db._acquire_timeout
        pool = db._pool
        try:
            conn = pool.getconn(timeout=min(timeout, db._acquire_timeout))
        except BaseException as exc:
            self.finish()
            if self.cancel_requested:
                raise _NotStarted from exc
            raise
        try:
            self.conn = conn
            if self.cancel_requested:
                raise _NotStarted
            return self._body(conn, self)
        finally:
            self.finish()
            pool.putconn(conn)

    def finish(self) -> None:
        """Called by the worker once its statements are done: stops the canceller before any cleanup
        (rollback, commit, return to the pool) can be hit by a late cancel request."""
        if self.finished:
            return
        self.finished = True
        if self.cancel_requested:
            assert self.done is not None and self.canceller_exited is not None
            self.done.set()
            self.canceller_exited.wait()

    # -- canceller thread -------------------------------------------------------------------------

    def cancel_loop(self) -> None:
        assert self.done is not None and self.canceller_exited is not None
        delay = FIRST_CANCEL_RETRY
        slow_from = time.monotonic() + FAST_CANCEL_PERIOD
        try:
            while not self.finished:
                conn = self.conn
                if conn is not None:
                    self._db._cancel_channel.cancel(conn)
                if self.done.wait(delay):
                    break
                delay = next_cancel_retry(delay, fast=time.monotonic() < slow_from)
        finally:
            self.canceller_exited.set()

    def _deliver_cancel_loop(self, result: outcome.Outcome[None]) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._on_canceller_done, result)

    # -- trio thread ------------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._waiting:
            self._waiting = False
            trio.lowlevel.reschedule(self._task)

    def on_work_done(self, result: outcome.Outcome[T]) -> None:
        self._outcome = result
        self._wake()

    def _on_canceller_done(self, result: outcome.Outcome[None]) -> None:
        self._canceller_running = False
        self._wake()

    def _abort(self, raise_cancel: Callable[[], object]) -> trio.lowlevel.Abort:
        if not self.cancel_requested:
            self._raise_cancel = raise_cancel
            self.done = threading.Event()
            self.canceller_exited = threading.Event()
            self.cancel_requested = True
            self._canceller_running = True
            trio.lowlevel.start_thread_soon(
                self.cancel_loop, self._deliver_cancel_loop, name="scribe-pg-cancel"
            )
        return trio.lowlevel.Abort.FAILED

    async def run(self) -> outcome.Outcome[T]:
        self._db._workers.submit(self)
        while self._outcome is None or self._canceller_running:
            self._waiting = True
            await trio.lowlevel.wait_task_rescheduled(self._abort)
        return self._outcome

    def raise_cancel(self) -> NoReturn:
        """Raise what trio handed the abort function: ``trio.Cancelled`` (or KeyboardInterrupt)."""
        assert self._raise_cancel is not None
        self._raise_cancel()
        raise AssertionError("trio's raise_cancel returned")  # pragma: no cover
