"""What a shared session store says changed, as other daemons wrote it: :class:`ChangeNotice`. A
notice names rows (a session id, a range of sequence numbers), never their contents: the reader
fetches those from the store."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ChangeNotice", "NoticeKind"]


class NoticeKind(enum.Enum):
    """What a :class:`ChangeNotice` is about."""

    #: A session was registered, changed (its row version moved) or deleted.
    SESSION = "session"
    #: Worklog entries ``first_seq`` to ``last_seq`` of a session were stored.
    WORKLOG = "worklog"
    #: Summary ``version`` of a session was stored.
    SUMMARY = "summary"
    #: The notices resume after a break (the listener reconnected): what changed during it must be
    #: read from the store; ``since`` says when the break began (seconds since the epoch).
    RESYNC = "resync"


@dataclass(frozen=True, slots=True)
class ChangeNotice:
    """One change notice.

    Attributes:
        kind: what changed.
        session_id: the session (None for :attr:`NoticeKind.RESYNC`).
        first_seq, last_seq: the entries stored (:attr:`NoticeKind.WORKLOG`; else 0).
        since: when the break began (:attr:`NoticeKind.RESYNC`; else 0).
        owner: the session's owner when it changed (None: nobody, or not known).
        version: the summary version stored (:attr:`NoticeKind.SUMMARY`; else 0).
    """

    kind: NoticeKind
    session_id: str | None = None
    first_seq: int = 0
    last_seq: int = 0
    since: float = 0.0
    owner: str | None = None
    version: int = 0
