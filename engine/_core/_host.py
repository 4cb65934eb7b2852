"""Embedding the engine in hosts that are not trio: sync programs (a portal thread) and asyncio programs
(trio guest mode)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar, final

import outcome
import trio

from ._engine import Engine, EngineConfig, open_engine
from ._errors import EngineClosedError, ScribeError

__all__ = ["AsyncioEngine", "EnginePortal", "open_asyncio_engine", "open_portal"]

_T = TypeVar("_T")


@final
class EnginePortal:
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
    portal = EnginePortal()
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


@final
class AsyncioEngine:
    """A handle for calling an engine that runs in trio guest mode inside an asyncio loop.

    Get one from :func:`open_asyncio_engine`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._engine: Engine | None = None
        self._nursery: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None

    @property
    def engine(self) -> Engine:
        """The engine. Use it only from trio code started through :meth:`call`."""
        if self._engine is None:
            raise EngineClosedError("the engine is not running")
        return self._engine

    async def call(self, fn: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """Run ``await fn(*args)`` as a trio task in the engine and await its result from asyncio.

        Cancelling the awaiting asyncio task cancels the trio task and waits for it to finish before the
        ``CancelledError`` propagates, so nothing keeps running behind the caller's back. If the engine
        shuts down meanwhile, ``EngineClosedError`` is raised.
        """
        if self._nursery is None or self._token is None:
            raise EngineClosedError("the engine is not running")
        fut: asyncio.Future[_T] = self._loop.create_future()
        scope = trio.CancelScope()

        async def runner() -> None:
            try:
                with scope:
                    try:
                        result = await fn(*args)
                    except Exception as exc:
                        if not fut.done():
                            fut.set_exception(exc)
                        return
                    if not fut.done():
                        fut.set_result(result)
            finally:
                if not fut.done():
                    fut.set_exception(
                        EngineClosedError("the call was cancelled by engine shutdown")
                    )

        nursery = self._nursery
        self._token.run_sync_soon(lambda: nursery.start_soon(runner))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            self._token.run_sync_soon(scope.cancel)
            try:
                await fut
            except BaseException:
                pass
            raise


@asynccontextmanager
async def open_asyncio_engine(config: EngineConfig | None = None) -> AsyncIterator[AsyncioEngine]:
    """Run an engine in trio guest mode inside the running asyncio loop for the duration of the block.

    When the block ends normally the engine shuts down gracefully; when it raises or the asyncio task is
    cancelled, the engine is cancelled at once. Either way the block's exit waits until trio has finished.

    Raises:
        ScribeError: the engine failed to start (chained to the cause).
    """
    loop = asyncio.get_running_loop()
    handle = AsyncioEngine(loop)
    ready: asyncio.Future[None] = loop.create_future()
    done: asyncio.Future[outcome.Outcome[None]] = loop.create_future()

    async def trio_main() -> None:
        async with open_engine(config) as engine:
            async with trio.open_nursery() as nursery:
                handle._engine = engine
                handle._nursery = nursery
                handle._token = trio.lowlevel.current_trio_token()
                handle._stop = trio.Event()
                if not ready.done():
                    ready.set_result(None)
                await handle._stop.wait()
                nursery.cancel_scope.cancel()

    def on_done(result: outcome.Outcome[None]) -> None:
        handle._nursery = None
        handle._engine = None
        if not done.done():
            done.set_result(result)
        if not ready.done():
            ready.set_result(None)

    trio.lowlevel.start_guest_run(
        trio_main,
        run_sync_soon_threadsafe=loop.call_soon_threadsafe,
        run_sync_soon_not_threadsafe=loop.call_soon,
        done_callback=on_done,
        host_uses_signal_set_wakeup_fd=True,
    )
    await asyncio.shield(ready)
    if handle._token is None:
        result = await done
        try:
            result.unwrap()
        except BaseException as exc:
            raise ScribeError("the engine failed to start") from exc
        raise ScribeError("the engine stopped before it started")
    token = handle._token
    graceful = False
    try:
        yield handle
        graceful = True
    finally:
        stop = handle._stop
        engine = handle._engine
        if graceful and stop is not None:
            token.run_sync_soon(stop.set)
        elif engine is not None:
            token.run_sync_soon(engine.cancel)
        result = await asyncio.shield(done)
        handle._token = None
        if graceful:
            result.unwrap()
