"""The daemons that own sessions: who each one is (:class:`OwnerInfo`) and the error a write gets
when its daemon does not own the session it writes to (:class:`NotOwnerError`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._session_store import StoreError

__all__ = ["NotOwnerError", "OwnerInfo", "owner_label"]


@dataclass(frozen=True, slots=True)
class OwnerInfo:
    """A daemon (an engine process) as the session store knows it.

    Attributes:
        owner_id: its owner id (what :attr:`SessionRecord.owner` holds).
        host: the host name it runs on.
        pid: its process id there.
        name: the name it was given (``daemon_name``; empty: none).
        generation: its lease generation (a new one each time its lease had expired).
        alive: its lease is current.
    """

    owner_id: str
    host: str
    pid: int
    name: str
    generation: int
    alive: bool

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "owner_id": self.owner_id,
            "host": self.host,
            "pid": self.pid,
            "name": self.name,
            "generation": self.generation,
            "alive": self.alive,
        }


def owner_label(daemon: Mapping[str, Any]) -> str:
    """How people see a daemon (an :meth:`OwnerInfo.as_dict`): ``name@host:pid``, ``host:pid``
    without a name, ``(gone)`` after it when its lease has run out."""
    name = f"{daemon['name']}@" if daemon.get("name") else ""
    gone = "" if daemon.get("alive") else " (gone)"
    return f"{name}{daemon['host']}:{daemon['pid']}{gone}"


class NotOwnerError(StoreError):
    """A write to a session this daemon does not own (nothing was written): another daemon owns it,
    or this daemon's lease expired and the session was owned under an earlier generation (fenced).

    Attributes:
        session_id: the session concerned.
        owner: the owner the store names for it (None: nobody).
    """

    def __init__(self, session_id: str, owner: str | None, why: str) -> None:
        super().__init__(f"session {session_id!r} is not written by this daemon: {why}")
        self.session_id = session_id
        self.owner = owner
