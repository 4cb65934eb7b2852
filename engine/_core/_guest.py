"""The asyncio host: an engine running in trio guest mode inside an asyncio loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, final

import outcome
import trio

from ._config import EngineConfig
from ._construction import NoPublicConstructor
from ._engine import Engine, open_engine
from ._errors import EngineClosedError, ScribeError

__all__ = ["AsyncioEngine", "open_asyncio_engine"]

_T = TypeVar("_T")


@final
class AsyncioEngine(metaclass=NoPublicConstructor):
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
    handle = AsyncioEngine._create(loop)
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
