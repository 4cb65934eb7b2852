"""The ``index.lock`` a killed git of ours could not drop.

git removes its lock files on SIGTERM, but it installs that handler only once its first lock file
is open: a signal in between leaves ``index.lock`` behind, and every later write (and every
:func:`open_repository`) is refused. After one of our writes is cancelled, the lock is dropped
when it is provably that write's: it did not exist (as that inode) before the write started, and
no process has it open now.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["LockIdentity", "drop_abandoned_lock", "lock_identity"]

#: ``(st_dev, st_ino)`` of a lock file, or None when there is none.
LockIdentity = tuple[int, int] | None


def lock_identity(lock: Path) -> LockIdentity:
    """Which file ``lock`` is now (None: there is none)."""
    try:
        st = os.lstat(lock)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _held_open(lock: Path) -> bool:
    """Whether any process we may look at has ``lock`` open (a git of anyone else's, between steps)."""
    target = os.fsencode(lock)
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return True  # cannot tell: keep the lock
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(os.fsencode(f"{fd_dir}/{fd}")) == target:
                    return True
            except OSError:
                continue
    return False


def drop_abandoned_lock(lock: Path, before: LockIdentity) -> bool:
    """Remove ``lock`` if a write of ours, now reaped, left it: new since ``before`` and held by nobody.

    Args:
        lock: the lock file (``<git dir>/index.lock``).
        before: :func:`lock_identity` of it taken just before the write started.

    Returns:
        Whether a lock file was removed.

    Cancellation: synchronous; nothing to cancel.
    """
    now = lock_identity(lock)
    if now is None or now == before or _held_open(lock):
        return False
    try:
        os.unlink(lock)
    except FileNotFoundError:
        return False
    return True
