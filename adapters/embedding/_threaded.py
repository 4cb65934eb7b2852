"""What every local embedder shares: texts embedded batch by batch in bounded worker threads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import trio

from engine import InvalidArgumentError

__all__ = [
    "MatrixEmbedder",
    "check_int",
    "embed_in_threads",
    "embed_matrix_in_threads",
    "worker_limiter",
]


def check_int(name: str, value: object, top: int) -> None:
    """Refuse ``value`` unless it is an int within ``1..top`` (a bool is not an int here).

    Raises:
        InvalidArgumentError: it is not.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise InvalidArgumentError(f"{name} must be an int within 1..{top}")


def worker_limiter(batch_size: int, threads: int) -> trio.CapacityLimiter:
    """The limiter of an embedder's worker threads, once ``batch_size`` (1-4096) and ``threads``
    (1-16) are checked.

    Raises:
        InvalidArgumentError: one is out of range.
    """
    check_int("batch_size", batch_size, 4096)
    check_int("threads", threads, 16)
    return trio.CapacityLimiter(threads)


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


async def embed_matrix_in_threads(
    embed_sync: Callable[[Sequence[str]], np.ndarray[Any, np.dtype[np.float32]]],
    texts: Sequence[str],
    *,
    batch: int,
    dims: int,
    limiter: trio.CapacityLimiter,
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """:func:`embed_in_threads` for an ``embed_sync`` that answers a float32 matrix (a row per
    text): the rows of every batch, in order, as one matrix of ``dims`` columns.

    Cancellation: as :func:`embed_in_threads`.
    """
    items = list(texts)
    parts = [np.zeros((0, dims), dtype=np.float32)]
    for start in range(0, len(items), batch):
        parts.append(
            await trio.to_thread.run_sync(
                embed_sync, items[start : start + batch], limiter=limiter, abandon_on_cancel=True
            )
        )
    await trio.lowlevel.checkpoint()
    return np.concatenate(parts)


@runtime_checkable
class MatrixEmbedder(Protocol):
    """An embedder that can also answer its vectors as one float32 matrix (a row per text): what a
    store writing many rows at once wants, without a Python float per number on the way."""

    async def embed_matrix(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The vectors of ``texts``, a row each, in order.

        Cancellation: the call is abandoned and nothing is stored.
        """
        ...
