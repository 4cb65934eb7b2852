"""The entry journal's protocol: worklog entries the store has not acknowledged yet, kept durably.

When the worklog store refuses a write, the scribe writes the entries it carries ahead to this journal
(one per session) so that a crash of the process during the outage loses none of them; the next
start replays the journal into the store and removes it. No I/O here; ``adapters`` implements it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final, Protocol, runtime_checkable

from .._core._errors import InvalidArgumentError, ScribeError
from ._worklog_records import WorklogEntry

__all__ = ["EntryJournal", "JournalError", "check_journal_session"]

_SAFE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class JournalError(ScribeError):
    """The journal could not be written or read (the cause says why)."""


def check_journal_session(session_id: str) -> str:
    """A session id a journal can name its file after (letters, digits, ``_.-``; 128 at most)."""
    if not isinstance(session_id, str) or not _SAFE_ID.fullmatch(session_id) or ".." in session_id:
        raise InvalidArgumentError(f"a journal cannot hold session id {session_id!r}")
    return session_id


@runtime_checkable
class EntryJournal(Protocol):
    """Per-session, append-only journals of numbered worklog entries.

    A call that returns has made its change durable (an appended entry survives a crash of the process
    the moment :meth:`append` returns). A torn last line (a crash mid-append) is ignored by readers.
    When the same ``seq`` was appended twice, the later entry wins.
    """

    async def append(self, session_id: str, entries: Sequence[WorklogEntry]) -> None:
        """Add ``entries`` (all of ``session_id``) to the end of its journal, durably.

        Raises:
            JournalError: the journal could not be written.

        Cancellation: the write is finished (in a worker thread) before the cancellation is delivered.
        """
        ...

    async def read(
        self, session_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[WorklogEntry]:
        """The journal's entries with ``seq > after_seq``, ascending by seq, at most ``limit``.

        Raises:
            JournalError: the journal could not be read.
        """
        ...

    async def replace(self, session_id: str, entries: Sequence[WorklogEntry]) -> None:
        """Make ``entries`` the whole journal of ``session_id`` at once (old or new, never torn);
        an empty sequence removes it.

        Raises:
            JournalError: the journal could not be written.
        """
        ...

    async def remove(self, session_id: str) -> None:
        """Remove the journal of ``session_id`` (nothing happens when there is none)."""
        ...

    async def sessions(self) -> list[str]:
        """The sessions that have a journal, sorted."""
        ...
