"""The sync host: an engine running in a background thread, called from synchronous code through a portal."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, final

import outcome
import trio

from ._config import EngineConfig
from ._construction import NoPublicConstructor
from ._engine import Engine, open_engine
from ._errors import EngineClosedError, ScribeError

__all__ = ["EnginePortal", "open_portal"]

_T = TypeVar("_T")


@final
class EnginePortal(metaclass=NoPublicConstructor):
    """A handle for calling an engine that runs in a background thread from synchronous code.

    Get one from :func:`open_portal`.
    """

    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._result: outcome.Outcome[None] | None = None

    @property
    def engine(self) -> Engine:
        """The engine. Touch it only through :meth:`call` / :meth:`call_sync` (it lives in another
        thread)."""
        if self._engine is None:
            raise EngineClosedError("the portal's engine is not running")
        return self._engine

    def call(self, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """Run ``await fn(*args)`` in the engine's thread and return its result (or raise its error).

        Blocks the calling thread. If the engine shuts down meanwhile the call is cancelled with it and
        ``EngineClosedError`` is raised.
        """
        if self._token is None:
            raise EngineClosedError("the portal's engine is not running")
        try:
            return trio.from_thread.run(fn, *args, trio_token=self._token)
        except trio.RunFinishedError:
            raise EngineClosedError("the portal's engine has stopped") from None
        except trio.Cancelled:
            raise EngineClosedError("the call was cancelled by engine shutdown") from None

    def call_sync(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run ``fn(*args)`` (a sync function) in the engine's thread and return its result."""
        if self._token is None:
            raise EngineClosedError("the portal's engine is not running")
        try:
            return trio.from_thread.run_sync(fn, *args, trio_token=self._token)
        except trio.RunFinishedError:
            raise EngineClosedError("the portal's engine has stopped") from None

    def _run(self, config: EngineConfig | None) -> None:
        async def main() -> None:
            async with open_engine(config) as engine:
                self._engine = engine
                self._token = trio.lowlevel.current_trio_token()
                self._stop = trio.Event()
                self._ready.set()
                await self._stop.wait()

        self._result = outcome.capture(trio.run, main)
        self._engine = None
        self._ready.set()

    def _stop_engine(self, *, graceful: bool, timeout: float) -> None:
        token = self._token
        if token is not None:
            try:
                if graceful:
                    assert self._stop is not None
                    trio.from_thread.run_sync(self._stop.set, trio_token=token)
                else:
                    trio.from_thread.run_sync(self.engine.cancel, trio_token=token)
            except (trio.RunFinishedError, EngineClosedError):
                pass
        if self._thread is not None:
            self._thread.join(timeout)
        self._token = None


@contextmanager
def open_portal(
    config: EngineConfig | None = None, *, shutdown_timeout: float = 30.0
) -> Iterator[EnginePortal]:
    """Run an engine in a background thread for the duration of the ``with`` block (for sync hosts).

    When the block ends normally the engine shuts down gracefully. When it raises (``KeyboardInterrupt``
    from Ctrl-C included, which Python delivers to the host's main thread), the engine is cancelled at once;
    either way the thread is joined for at most ``shutdown_timeout`` seconds, so the host never hangs at
    exit, and the exception propagates.

    Raises:
        ScribeError: the engine failed to start (chained to the cause).
    """
    portal = EnginePortal._create()
    thread = threading.Thread(target=portal._run, args=(config,), name="scribe-engine", daemon=True)
    portal._thread = thread
    thread.start()
    portal._ready.wait()
    if portal._token is None:
        assert portal._result is not None
        try:
            portal._result.unwrap()
        except BaseException as exc:
            raise ScribeError("the engine failed to start") from exc
        raise ScribeError("the engine stopped before it started")
    try:
        yield portal
    except BaseException:
        portal._stop_engine(graceful=False, timeout=shutdown_timeout)
        raise
    else:
        portal._stop_engine(graceful=True, timeout=shutdown_timeout)
        if portal._result is not None:
            portal._result.unwrap()
