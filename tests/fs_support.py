"""Special files for the tests that only regular files are read: FIFOs, sockets, devices."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

#: How long a reader blocked on a FIFO may wait before :func:`unblocking` lets it go. A reader that
#: refuses FIFOs never waits; one that opens them ends after this and its test fails, not hangs.
UNBLOCK_AFTER = 30.0


def make_fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def make_socket(path: Path) -> socket.socket:
    """A listening Unix socket bound at ``path`` (the caller closes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(1)
    return s


def make_zero_device(path: Path) -> Path:
    """A character device like ``/dev/zero`` (endless zeros) at ``path``."""
    # The tests run as root (CI too), which may make device nodes: a refusal is a failure, not a skip.
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 5))
    return path


@contextlib.contextmanager
def unblocking(*fifos: Path) -> Iterator[None]:
    """Within the block, a reader or writer blocked opening one of ``fifos`` is let go after
    :data:`UNBLOCK_AFTER` seconds (the other end is opened and closed), so code that opens FIFOs
    fails its test instead of hanging it."""
    done = threading.Event()

    def other_ends() -> None:
        if done.wait(UNBLOCK_AFTER):
            return
        for fifo in fifos:
            for flags in (os.O_WRONLY, os.O_RDONLY):
                with contextlib.suppress(OSError):
                    os.close(os.open(fifo, flags | os.O_NONBLOCK))

    t = threading.Thread(target=other_ends, daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join()
