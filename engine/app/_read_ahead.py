"""A call run in a worker thread from now on, its result awaited later (a transcript's next window
is read while the current one is stored), and a nursery's single error raised as itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import trio

__all__ = ["ReadAhead", "unwrapped"]

_T = TypeVar("_T")


class ReadAhead(Generic[_T]):
    """``fn`` run in a worker thread from now on; :meth:`get` waits for its result."""

    def __init__(self, nursery: trio.Nursery, fn: Callable[[], _T]) -> None:
        self._done = trio.Event()
        self._value: _T | None = None
        self._error: Exception | None = None
        nursery.start_soon(self._run, fn)

    async def _run(self, fn: Callable[[], _T]) -> None:
        try:
            self._value = await trio.to_thread.run_sync(fn, abandon_on_cancel=True)
        except Exception as exc:
            self._error = exc
        finally:
            self._done.set()

    async def get(self) -> _T:
        """The result (or the error ``fn`` raised).

        Cancellation: the wait ends; the call goes on until its nursery is cancelled (then the
        thread is abandoned).
        """
        await self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value


async def unwrapped(call: Awaitable[_T]) -> _T:
    """``call``'s result; a group of one error (from its nursery) raised as that error.

    Cancellation: as ``call``'s.
    """
    try:
        return await call
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1 and isinstance(group.exceptions[0], Exception):
            raise group.exceptions[0] from None
        raise
