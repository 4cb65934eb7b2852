"""Run a few calls at once and answer all their results, or raise the first failure as itself.

A nursery raises what its tasks raised inside an :class:`ExceptionGroup`; a caller that asked for
several lookups at once (a search's rankings, recall's message and decision searches) wants the
typed error one of them raised, as it would have had them run one after another. The first call to
raise cancels the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import trio

__all__ = ["concurrently"]


async def concurrently(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Await every one of ``calls`` at once; answers their results in the order given.

    Raises:
        Exception: the first exception a call raised, as itself (the other calls are cancelled).

    Cancellation: every call is cancelled; nothing is answered.
    """
    results: list[Any] = [None] * len(calls)
    errors: list[Exception] = []

    async def one(i: int, scope: trio.CancelScope) -> None:
        try:
            results[i] = await calls[i]()
        except Exception as exc:  # re-raised below as itself, not inside an ExceptionGroup
            errors.append(exc)
            scope.cancel()

    async with trio.open_nursery() as nursery:
        for i in range(len(calls)):
            nursery.start_soon(one, i, nursery.cancel_scope)
    if errors:
        raise errors[0]
    return results
