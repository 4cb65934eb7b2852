"""The summarizer protocol: worklog entries folded into the previous summary. No I/O here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ._summary_record import Summary
from ._worklog_records import WorklogEntry

__all__ = ["Summarizer"]


@runtime_checkable
class Summarizer(Protocol):
    """Turns worklog entries into a summary, folding them into the previous one.

    Implementations must be incremental: ``entries`` are only the entries after ``previous.last_seq``.
    An LLM-backed summarizer implements the same call.
    """

    async def summarize(
        self,
        session_id: str,
        previous: Summary | None,
        entries: Sequence[WorklogEntry],
        *,
        final: bool = False,
    ) -> Summary:
        """The next summary version for ``session_id`` (version 1 when ``previous`` is None).

        Cancellation: nothing is stored by this call; a cancelled summarize leaves no trace.
        """
        ...
