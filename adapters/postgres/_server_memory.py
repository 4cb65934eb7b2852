"""How much shared memory the embedded server's buffer cache gets: a quarter of the machine's memory
(or of the control group's limit, when that is lower), from 128 MB to 8 GB.

PostgreSQL's own default of 128 MB is sized for a server that shares a small machine. At a million
messages the memory tables' rows are 1.6 GB and their indexes 1.7 GB: with 128 MB, every search
that reaches index pages read by no recent search copies them from the kernel's page cache first
(measured on a million messages: a session-scoped vector search 60-190 ms the first time, 26-50 ms
once its pages are cached; with 2 GB, 37-108 ms and 26-41 ms before the whole index was cached). A
quarter of memory is the PostgreSQL documentation's starting point for a dedicated server; the
buffers are touched, and so take memory, only as they are used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

__all__ = ["shared_buffers_setting"]

_MIB: Final = 1024 * 1024
_LEAST_MB: Final = 128
_MOST_MB: Final = 8192
_CGROUP_LIMIT: Final = Path("/sys/fs/cgroup/memory.max")


def _memory_bytes() -> int | None:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError):
        return None
    try:
        limit = _CGROUP_LIMIT.read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def shared_buffers_setting(memory: int | None = None) -> str:
    """The ``shared_buffers`` value for a machine with ``memory`` bytes (None: this machine's)."""
    memory = _memory_bytes() if memory is None else memory
    mb = _LEAST_MB if memory is None else memory // 4 // _MIB
    return f"{max(_LEAST_MB, min(_MOST_MB, mb))}MB"
