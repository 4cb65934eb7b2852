"""What every local embedder shares: texts embedded batch by batch in bounded worker threads."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import trio

__all__ = ["embed_in_threads"]


async def embed_in_threads(
    embed_sync: Callable[[Sequence[str]], list[list[float]]],
    texts: Sequence[str],
    *,
    batch: int,
    limiter: trio.CapacityLimiter,
) -> list[list[float]]:
    """``embed_sync`` over ``texts``, ``batch`` at a time, each batch in a worker thread that
    ``limiter`` admits; the vectors in order.

    Cancellation: abandoned between or during batches (a batch in a worker finishes there and its
    vectors are dropped); nothing is returned.
    """
    items = list(texts)
    out: list[list[float]] = []
    for start in range(0, len(items), batch):
        out.extend(
            await trio.to_thread.run_sync(
                embed_sync, items[start : start + batch], limiter=limiter, abandon_on_cancel=True
            )
        )
    await trio.lowlevel.checkpoint()
    return out
