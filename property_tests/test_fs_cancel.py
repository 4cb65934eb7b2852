"""Atomic writes cancelled or killed at random points leave the old content or the new, never a mix."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import ScopedFileSystem

REPO = Path(__file__).resolve().parent.parent


def _temp_files(root: Path) -> list[str]:
    return [name for name in os.listdir(root) if name.endswith(".scribe-tmp")]


@settings(max_examples=80, deadline=None)
@given(
    delay=st.floats(min_value=0.0, max_value=0.004),
    old_size=st.integers(min_value=0, max_value=300_000),
    new_size=st.integers(min_value=0, max_value=3_000_000),
)
async def test_cancelled_write_leaves_old_or_new(
    delay: float, old_size: int, new_size: int
) -> None:
    root = Path(tempfile.mkdtemp())
    try:
        fs = ScopedFileSystem(root)
        old, new = b"o" * old_size, b"n" * new_size + b"!"
        (root / "doc").write_bytes(old)
        with trio.move_on_after(delay) as scope:
            await fs.write_bytes("doc", new)
        content = (root / "doc").read_bytes()
        # Cancelled means not written; returning means written.
        assert content == (old if scope.cancelled_caught else new)
        assert _temp_files(root) == []
    finally:
        shutil.rmtree(root)


WRITER = """
import sys, trio
from adapters import ScopedFileSystem

async def main():
    fs = ScopedFileSystem(sys.argv[1])
    k = 0
    print("ready", flush=True)
    while True:
        k += 1
        await fs.write_bytes("doc", bytes([k % 251]) * (200_000 + k))

trio.run(main)
"""


@settings(max_examples=12, deadline=None)
@given(delay=st.floats(min_value=0.0, max_value=0.05))
async def test_killed_writer_leaves_a_whole_version(delay: float) -> None:
    root = Path(tempfile.mkdtemp())
    try:
        (root / "doc").write_bytes(b"\0" * 200_000)
        proc = await trio.lowlevel.open_process(
            [sys.executable, "-c", WRITER, str(root)],
            cwd=REPO,
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        try:
            assert (await proc.stdout.receive_some(16)).startswith(b"ready")
            await trio.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            with trio.CancelScope(shield=True):
                await proc.wait()
                await proc.stdout.aclose()
        content = (root / "doc").read_bytes()
        # Version k is bytes([k % 251]) * (200_000 + k); the initial content is version 0.
        assert content == bytes([content[0]]) * len(content)
        assert (len(content) - 200_000) % 251 == content[0]
    finally:
        shutil.rmtree(root)
