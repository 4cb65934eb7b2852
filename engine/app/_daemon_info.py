"""Where a running daemon can be reached: what ``scribe serve`` prints when it is ready and the
control ``status`` operation answers."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DaemonInfo"]


@dataclass(frozen=True, slots=True)
class DaemonInfo:
    """Where a running daemon can be reached.

    Attributes:
        pid: its process id.
        started_at: when it started (seconds since the epoch).
        home: its home directory.
        socket: the control socket.
        database: the database (embedded, or the URL without its password).
        embedder: the embedder memory uses: its model and dimensions.
        feed_url: the live feed's websocket URL.
        dashboard_url: the dashboard's URL.
        token: a read-only feed token for people and tools.
        repo: the repository it was started on, if any.
        session: the session it started on that repository, if any.
    """

    pid: int = field(default_factory=os.getpid)
    started_at: float = field(default_factory=time.time)
    home: str = ""
    socket: str = ""
    database: str = ""
    embedder: str = ""
    feed_url: str | None = None
    dashboard_url: str | None = None
    token: str | None = None
    repo: str | None = None
    session: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "pid": self.pid,
            "started_at": self.started_at,
            "home": self.home,
            "socket": self.socket,
            "database": self.database,
            "embedder": self.embedder,
            "feed_url": self.feed_url,
            "dashboard_url": self.dashboard_url,
            "token": self.token,
            "repo": self.repo,
            "session": self.session,
        }
