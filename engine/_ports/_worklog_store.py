"""The worklog's storage protocol: durable entries and summaries. No I/O here; ``adapters`` implements it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .._ports._summary_record import Summary
from .._ports._worklog_records import WorklogEntry, WorklogError

__all__ = ["SummaryConflictError", "WorklogConflictError", "WorklogStore"]


class WorklogConflictError(WorklogError):
    """An entry with that session and seq is already stored (two writers for one session)."""


class SummaryConflictError(WorklogError):
    """A summary with that session and version is already stored."""


@runtime_checkable
class WorklogStore(Protocol):
    """Worklog entries and summaries, stored durably.

    A call that returns has committed: an appended entry survives a crash of the process the moment
    :meth:`append` returns. Every call may be cancelled; a cancelled write is then either fully made or
    not made at all.
    """

    async def append(self, entries: Sequence[WorklogEntry]) -> None:
        """Store ``entries`` atomically (all or none).

        Raises:
            WorklogConflictError: one of them is already stored.
            StoreNotFoundError: the session is not registered.
        """
        ...

    async def entries(
        self,
        session_id: str,
        *,
        after_seq: int = 0,
        before_seq: int | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[WorklogEntry]:
        """Entries with ``seq > after_seq`` (and ``seq < before_seq`` when given) in ascending
        order, at most ``limit`` (an int >= 1, :func:`engine.check_optional_limit`; None: all);
        with ``newest``, the last ``limit`` of them (still ascending)."""
        ...

    async def last_seq(self, session_id: str) -> int:
        """The highest stored ``seq`` of the session (0: none)."""
        ...

    async def save_summary(self, summary: Summary) -> None:
        """Store a summary version.

        Raises:
            SummaryConflictError: that version is already stored.
        """
        ...

    async def latest_summary(self, session_id: str) -> Summary | None:
        """The highest stored summary version, or None."""
        ...

    async def summaries(self, session_id: str) -> list[Summary]:
        """Every stored summary version, oldest first."""
        ...
