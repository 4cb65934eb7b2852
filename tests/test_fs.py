"""The scoped file system on the real file system: confinement, caps, atomic writes, appends."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing

import engine
from adapters import ScopedFileSystem
from engine import FileAccessError, FileTooLargeError, NoSuchFileError, PathEscapeError


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.txt").write_text("beta")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    (root / "link-out").symlink_to(outside / "secret")
    (root / "dir-out").symlink_to(outside)
    (root / "link-in").symlink_to(root / "sub" / "b.txt")
    (root / "loop").symlink_to("loop")
    return root


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".scribe-tmp")]


Op = Callable[[ScopedFileSystem, str], Awaitable[object]]

OPERATIONS: dict[str, Op] = {
    "read_bytes": lambda fs, p: fs.read_bytes(p),
    "read_text": lambda fs, p: fs.read_text(p),
    "write_bytes": lambda fs, p: fs.write_bytes(p, b"x"),
    "append": lambda fs, p: fs.append(p, b"x"),
    "stat": lambda fs, p: fs.stat(p),
    "exists": lambda fs, p: fs.exists(p),
    "list_dir": lambda fs, p: fs.list_dir(p),
    "make_dir": lambda fs, p: fs.make_dir(p),
    "remove": lambda fs, p: fs.remove(p),
    "resolve": lambda fs, p: fs.resolve(p),
}

ESCAPES = [
    "..",
    "../outside/secret",
    "sub/../../outside/secret",
    "missing/../../outside/new",
    "/etc/passwd",
    "link-out",
    "dir-out/secret",
    "dir-out/new-file",
    "nul\0byte",
]


@pytest.mark.parametrize("op", sorted(OPERATIONS))
@pytest.mark.parametrize("path", ESCAPES)
async def test_every_escape_is_refused(tree: Path, op: str, path: str) -> None:
    fs = ScopedFileSystem(tree)
    if (op, path) == ("remove", "link-out"):
        await fs.remove(path)  # removing the link itself touches nothing outside
        assert not (tree / "link-out").is_symlink()
        path = "link-out/.."
    with pytest.raises(PathEscapeError) as info:
        await OPERATIONS[op](fs, path)
    assert info.value.root == tree
    assert isinstance(info.value, engine.ScribeError)
    outside = tree.parent / "outside"
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "secret"


async def test_paths_that_stay_inside_are_accepted(tree: Path) -> None:
    fs = ScopedFileSystem(tree)
    assert await fs.read_text("sub/../a.txt") == "alpha"
    assert await fs.read_text(str(tree / "sub" / "b.txt")) == "beta"  # absolute inside
    assert await fs.read_text("link-in") == "beta"  # symlink that stays inside
    assert await fs.resolve("link-in") == tree / "sub" / "b.txt"
    assert await fs.resolve(".") == tree
    assert await fs.exists("a.txt") and not await fs.exists("nope")


async def test_root_itself_cannot_be_removed(tree: Path) -> None:
    fs = ScopedFileSystem(tree)
    for path in (".", "", "sub/.."):
        with pytest.raises(PathEscapeError):
            await fs.remove(path)
    assert (tree / ".").is_dir()


async def test_read_cap(tree: Path) -> None:
    (tree / "big").write_bytes(b"x" * 1000)
    fs = ScopedFileSystem(tree, max_read_size=999)
    with pytest.raises(FileTooLargeError) as info:
        await fs.read_bytes("big")
    assert (info.value.size, info.value.limit) == (1000, 999)
    assert await fs.read_bytes("big", max_size=1000) == b"x" * 1000
    with pytest.raises(FileTooLargeError):
        await fs.read_bytes("big", max_size=10)


async def test_read_cap_holds_when_the_size_is_not_known_in_advance(tmp_path: Path) -> None:
    fs = ScopedFileSystem("/proc/self")
    assert (await fs.stat("status")).size == 0  # procfs reports no size
    assert b"Name:" in await fs.read_bytes("status")
    with pytest.raises(FileTooLargeError):
        await fs.read_bytes("status", max_size=16)


async def test_os_errors_are_typed(tree: Path) -> None:
    fs = ScopedFileSystem(tree)
    with pytest.raises(NoSuchFileError) as info:
        await fs.read_bytes("missing.txt")
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, engine.ScribeError)
    with pytest.raises(NoSuchFileError):
        await fs.write_bytes("no/such/dir/file", b"x")
    with pytest.raises(FileAccessError):
        await fs.read_bytes("sub")  # a directory
    with pytest.raises(FileAccessError):
        await fs.remove("sub")  # not empty
    with pytest.raises(FileAccessError):
        await fs.read_bytes("loop")
    with pytest.raises(NoSuchFileError):
        ScopedFileSystem(tree / "missing")
    with pytest.raises(FileAccessError):
        ScopedFileSystem(tree / "a.txt")


async def test_atomic_write_replaces_content_and_keeps_mode(tree: Path) -> None:
    fs = ScopedFileSystem(tree)
    (tree / "a.txt").chmod(0o640)
    await fs.write_text("a.txt", "new alpha")
    assert (tree / "a.txt").read_text() == "new alpha"
    assert (tree / "a.txt").stat().st_mode & 0o777 == 0o640
    await fs.write_bytes("fresh.bin", b"\0\1")
    assert (tree / "fresh.bin").read_bytes() == b"\0\1"
    await fs.write_text("link-in", "through the link")
    assert (tree / "link-in").is_symlink()
    assert (tree / "sub" / "b.txt").read_text() == "through the link"
    assert not _temp_files(tree)
    with pytest.raises(FileAccessError):
        await fs.write_bytes("sub", b"x")  # a directory is not replaced


async def test_readers_never_see_a_torn_write(tree: Path) -> None:
    fs = ScopedFileSystem(tree)
    versions = [bytes([65 + i]) * 300_000 for i in range(4)]
    await fs.write_bytes("doc", versions[0])
    seen: set[bytes] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add((tree / "doc").read_bytes())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(40):
            await fs.write_bytes("doc", versions[i % len(versions)])
    finally:
        stop.set()
        thread.join()
    assert seen <= set(versions)
    assert len(seen) >= 1


async def test_concurrent_appends_never_interleave(tree: Path) -> None:
    fs = ScopedFileSystem(tree, gate=engine.PriorityLimiter(8))
    # Records well above PIPE_BUF, each one byte value repeated, ended by a newline.
    records = [bytes([97 + i % 26]) * (70_000 + i) + b"\n" for i in range(24)]
    script = (
        "import sys, trio\n"
        "from adapters import ScopedFileSystem\n"
        "async def main():\n"
        "    fs = ScopedFileSystem(sys.argv[1])\n"
        "    for i in range(10):\n"
        "        await fs.append('log', b'P' * 90_000 + b'\\n')\n"
        "trio.run(main)\n"
    )
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(
                partial(
                    trio.run_process,
                    [sys.executable, "-c", script, str(tree)],
                    cwd=Path(__file__).parent.parent,
                    stdout=subprocess.DEVNULL,
                )
            )
        for record in records:
            nursery.start_soon(fs.append, "log", record)
    lines = (tree / "log").read_bytes().split(b"\n")
    assert lines.pop() == b""
    assert sorted(lines) == sorted([r[:-1] for r in records] + [b"P" * 90_000] * 20)
    assert all(len(set(line)) == 1 for line in lines)


async def test_stat_list_make_dir_and_remove(tree: Path) -> None:
    fs = ScopedFileSystem(tree)
    info = await fs.stat("a.txt")
    assert (info.path, info.size, info.is_file, info.is_dir) == ("a.txt", 5, True, False)
    assert info.mtime_ns == (tree / "a.txt").stat().st_mtime_ns
    listing = {i.path: i for i in await fs.list_dir()}
    assert set(listing) == {"a.txt", "sub", "link-out", "dir-out", "link-in", "loop"}
    assert listing["link-out"].is_symlink and listing["sub"].is_dir
    assert [i.path for i in await fs.list_dir("sub")] == ["sub/b.txt"]
    await fs.make_dir("new/nested/dir")
    await fs.make_dir("new/nested/dir")
    assert (tree / "new" / "nested" / "dir").is_dir()
    await fs.remove("link-in")  # the link, not its target
    assert not (tree / "link-in").exists() and (tree / "sub" / "b.txt").exists()
    await fs.remove("new/nested/dir")
    await fs.remove("a.txt")
    assert not (tree / "a.txt").exists()
    with pytest.raises(NoSuchFileError):
        await fs.remove("a.txt")


async def test_every_hop_is_admitted_through_the_gate(tree: Path) -> None:
    gate = engine.PriorityLimiter(1)
    fs = ScopedFileSystem(tree, gate=gate)
    assert fs.gate is gate
    got: list[bytes] = []

    async def read() -> None:
        got.append(await fs.read_bytes("a.txt"))

    async with trio.open_nursery() as nursery:
        async with gate.acquire():
            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            assert gate.statistics().waiting == 1 and got == []
    assert got == [b"alpha"]


def test_non_str_paths_are_refused(tree: Path) -> None:
    fs = ScopedFileSystem(tree)
    with pytest.raises(TypeError):
        fs.resolve_sync(b"a.txt")  # type: ignore[arg-type]
    assert fs.resolve_sync(Path("sub")) == tree / "sub"
    assert os.path.isabs(fs.resolve_sync("a.txt"))
