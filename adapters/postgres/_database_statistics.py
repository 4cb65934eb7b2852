"""A snapshot of a :class:`Database`'s pool, threads and call counters."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DatabaseStatistics"]


@dataclass(frozen=True, slots=True)
class DatabaseStatistics:
    """A snapshot of a :class:`Database`.

    Attributes:
        pool_size: connections the pool keeps (and call slots).
        connections: connections currently open (idle or in use).
        idle: connections idle in the pool.
        threads_in_use: calls holding a slot now (on the trio thread or in a worker thread).
        gate_waiting: queries waiting for admission through the priority gate.
        queries: calls completed (successfully or not).
        cancelled: calls ended by a trio cancellation.
        errors: calls that raised a database error.
        unavailable: True while the last call found the server unreachable and none succeeded since.
    """

    pool_size: int
    connections: int
    idle: int
    threads_in_use: int
    gate_waiting: int
    queries: int
    cancelled: int
    errors: int
    unavailable: bool
