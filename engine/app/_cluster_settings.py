"""The settings of daemons that share one database (``daemon_name``, ``owner_lease`` and
``adopt_orphans`` in :mod:`._config`), and the session stores they open.

- ``daemon_name``: a name shown with the sessions this daemon owns, beside its host and pid (empty,
  the default: none); at most 200 printable characters.
- ``owner_lease``: seconds this daemon's lease on its sessions holds (default 10). It is renewed
  every third of that; a daemon that has not renewed it for this long counts as gone, its live
  sessions are marked orphaned by the others, and it writes nothing more to them.
- ``adopt_orphans``: which orphaned sessions this daemon adopts by itself, at each orphan sweep:
  ``own`` (the default) the ones it lost when its own lease ran out (it was cut off from the
  database, or stalled) and that nobody adopted meanwhile; ``reachable`` those and any other
  daemon's whose work tree is the same one here (the same machine, or a shared filesystem); ``off``
  none (``scribe adopt`` only).
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
from typing import TYPE_CHECKING, Final

import adapters

from ._config_setting import Setting

if TYPE_CHECKING:
    from ._config import AppConfig

__all__ = [
    "ADOPT_POLICIES",
    "CLUSTER_SETTINGS",
    "history_key",
    "open_session_stores",
    "orphan_sweep_interval",
]

#: The values of ``adopt_orphans``.
ADOPT_POLICIES: Final = ("off", "own", "reachable")

#: The settings this module describes.
CLUSTER_SETTINGS: Final = {
    "daemon_name": Setting(
        "str", lambda v: len(v) <= 200 and v.isprintable(), "of at most 200 printable characters"
    ),
    "owner_lease": Setting("number", lambda v: 0.3 <= v <= 3600, "from 0.3 to 3600"),
    "adopt_orphans": Setting("str", lambda v: v in ADOPT_POLICIES, "off, own or reachable"),
}


async def open_session_stores(
    stack: contextlib.AsyncExitStack, db: adapters.Database, config: AppConfig
) -> tuple[adapters.SessionRegistry, adapters.PostgresWorklogStore]:
    """The session registry (entered on ``stack``, with this daemon's name and lease) and the
    worklog store fenced by its lease.

    Cancellation: the registry is not entered; nothing is left registered.
    """
    registry = await stack.enter_async_context(
        adapters.open_session_registry(db, name=config.daemon_name, lease=config.owner_lease)
    )
    return registry, adapters.PostgresWorklogStore(db, registry.lease)


def orphan_sweep_interval(config: AppConfig) -> float:
    """Seconds between two sweeps for orphaned sessions: half the lease, so a daemon that is gone
    has its sessions marked within one and a half leases at most."""
    return config.owner_lease / 2


def history_key(config: AppConfig) -> str:
    """Whose minutes the daemon's metric history keeps in the database (daemons that share one keep
    theirs apart): its ``daemon_name`` (else its host name), and a digest of its home, so the key
    stays the same across restarts and differs between homes."""
    home = hashlib.sha256(str(config.home.absolute()).encode()).hexdigest()[:12]
    return f"{(config.daemon_name or socket.gethostname())[:180]}:{home}"
