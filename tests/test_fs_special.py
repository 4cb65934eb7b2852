"""Only regular files are read: FIFOs, sockets and devices are refused without blocking, and a
read its caller gave up on gives its slot of the shared gate back."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import trio
import trio.testing
from fs_support import make_fifo, make_socket, make_zero_device, unblocking

import engine
from adapters import ScopedFileSystem
from engine import NotRegularFileError


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_text("alpha")
    return root


async def test_a_fifo_is_never_opened_for_reading(tree: Path) -> None:
    fifo = make_fifo(tree / "TODO.md")
    fs = ScopedFileSystem(tree)
    with unblocking(fifo):
        with pytest.raises(NotRegularFileError) as info:
            await fs.read_bytes("TODO.md")
        with pytest.raises(NotRegularFileError):
            await fs.read_text("TODO.md")
    assert info.value.kind == "FIFO" and info.value.path == fifo
    assert "not a regular file but a FIFO" in str(info.value)
    assert isinstance(info.value, engine.FileSystemError)
    # a symlink inside the tree to the FIFO is followed to it, and refused the same way
    (tree / "link").symlink_to("TODO.md")
    with unblocking(fifo), pytest.raises(NotRegularFileError):
        await fs.read_bytes("link")
    info_ = await fs.stat("TODO.md")
    assert not info_.is_file and not info_.is_dir


async def test_sockets_and_devices_are_refused(tree: Path) -> None:
    fs = ScopedFileSystem(tree)
    with make_socket(tree / "sock"):
        with pytest.raises(NotRegularFileError) as info:
            await fs.read_bytes("sock")
        assert info.value.kind == "socket"
    make_zero_device(tree / "zero")
    with pytest.raises(NotRegularFileError) as info:
        await fs.read_bytes("zero")
    assert info.value.kind == "character device"


async def test_appending_to_a_fifo_is_refused_without_blocking(tree: Path) -> None:
    fifo = make_fifo(tree / "log")
    fs = ScopedFileSystem(tree)
    with unblocking(fifo), pytest.raises(engine.FileSystemError):
        await fs.append("log", b"record\n")
    await fs.append("new.log", b"record\n")  # a missing file is still created
    assert (tree / "new.log").read_bytes() == b"record\n"


async def test_a_read_its_caller_gave_up_on_frees_the_shared_gate(tmp_path: Path) -> None:
    # A read stuck in the kernel (a hung network mount) cannot be interrupted: its caller leaves at
    # once, the shared gate is given back, and only the stuck file system's own threads stay taken.
    for name in ("stuck", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.txt").write_text(name)
    gate = engine.PriorityLimiter(1)
    stuck = ScopedFileSystem(tmp_path / "stuck", gate=gate, max_threads=1)
    other = ScopedFileSystem(tmp_path / "other", gate=gate)
    release = threading.Event()
    read = stuck._read_sync

    def blocked_read(path: str, limit: int) -> bytes:  # no FIFO blocks any more: a stand-in
        release.wait()
        return read(path, limit)

    try:
        stuck._read_sync = blocked_read  # type: ignore[method-assign]
        async with trio.open_nursery() as n:
            n.start_soon(stuck.read_bytes, "a.txt")
            await trio.testing.wait_all_tasks_blocked()
            assert gate.borrowed == 1
            n.cancel_scope.cancel()
        assert gate.borrowed == 0
        assert await other.read_bytes("a.txt") == b"other"
        # the stuck file system's one thread is still taken: its next read waits, cancellably,
        # without taking the gate
        with trio.CancelScope() as waiting:
            async with trio.open_nursery() as n:
                n.start_soon(stuck.stat, "a.txt")
                await trio.testing.wait_all_tasks_blocked()
                assert gate.borrowed == 0
                waiting.cancel()
    finally:
        release.set()
    del stuck._read_sync
    assert await stuck.read_bytes("a.txt") == b"stuck"
