"""The file system contract: confinement, reads with a cap, atomic writes, appends, listing."""

from __future__ import annotations

import errno

import pytest
import trio
from contracts.backends import FilesBackend

import engine


@pytest.mark.parametrize(
    "path", ["../outside", "sub/../../outside", "missing/../../x", "/etc/passwd", "nul\0byte"]
)
async def test_every_escape_is_refused(files: FilesBackend, path: str) -> None:
    fs = files.open_fs()
    for op in (
        fs.read_bytes(path),
        fs.write_bytes(path, b"x"),
        fs.append(path, b"x"),
        fs.exists(path),
        fs.stat(path),
        fs.list_dir(path),
        fs.make_dir(path),
        fs.remove(path),
        fs.resolve(path),
    ):
        with pytest.raises(engine.PathEscapeError) as info:
            await op
        assert info.value.root == fs.root
        assert isinstance(info.value, engine.ScribeError)


async def test_paths_inside_are_accepted(files: FilesBackend) -> None:
    fs = files.open_fs()
    assert await fs.read_text("sub/../a.txt") == "alpha"
    assert await fs.read_text(str(fs.root / "sub" / "b.txt")) == "beta"  # absolute inside
    assert await fs.resolve(".") == fs.root
    assert await fs.resolve("sub/b.txt") == fs.root / "sub" / "b.txt"
    assert await fs.exists("a.txt") and await fs.exists("sub") and not await fs.exists("nope")
    for root in (".", "", "sub/.."):
        with pytest.raises(engine.PathEscapeError):
            await fs.remove(root)


async def test_read_cap(files: FilesBackend) -> None:
    fs = files.open_fs(max_read_size=999)
    await fs.write_bytes("big", b"x" * 1000)
    with pytest.raises(engine.FileTooLargeError) as info:
        await fs.read_bytes("big")
    assert (info.value.size, info.value.limit) == (1000, 999)
    assert info.value.path == fs.root / "big"
    assert await fs.read_bytes("big", max_size=1000) == b"x" * 1000
    with pytest.raises(engine.FileTooLargeError):
        await fs.read_text("big", max_size=10)


async def test_os_errors_are_typed(files: FilesBackend) -> None:
    fs = files.open_fs()
    with pytest.raises(engine.NoSuchFileError) as missing:
        await fs.read_bytes("missing.txt")
    assert isinstance(missing.value, FileNotFoundError)
    assert missing.value.errno == errno.ENOENT and missing.value.filename is not None
    with pytest.raises(engine.NoSuchFileError):
        await fs.write_bytes("no/such/dir/file", b"x")
    with pytest.raises(engine.NoSuchFileError):
        await fs.stat("missing.txt")
    with pytest.raises(engine.NoSuchFileError):
        await fs.remove("missing.txt")
    with pytest.raises(engine.NoSuchFileError):
        await fs.list_dir("missing")
    with pytest.raises(engine.FileAccessError) as is_dir:
        await fs.read_bytes("sub")
    assert is_dir.value.errno == errno.EISDIR
    with pytest.raises(engine.FileAccessError):
        await fs.write_bytes("sub", b"x")
    with pytest.raises(engine.FileAccessError):
        await fs.remove("sub")  # not empty
    with pytest.raises(engine.FileAccessError):
        await fs.list_dir("a.txt")
    with pytest.raises(engine.FileAccessError):
        await fs.make_dir("a.txt/below")


async def test_write_append_stat_list_make_dir_and_remove(files: FilesBackend) -> None:
    fs = files.open_fs()
    await fs.write_text("a.txt", "replaced")
    assert await fs.read_text("a.txt") == "replaced"
    await fs.write_bytes("sub/new.bin", b"\0\1")
    assert await fs.read_bytes("sub/new.bin") == b"\0\1"
    await fs.append("log", b"one\n")
    await fs.append("log", b"two\n")
    assert await fs.read_bytes("log") == b"one\ntwo\n"

    info = await fs.stat("a.txt")
    assert (info.path, info.size, info.is_file, info.is_dir, info.is_symlink) == (
        "a.txt",
        8,
        True,
        False,
        False,
    )
    before = info.mtime_ns
    await fs.write_text("a.txt", "again")
    assert (await fs.stat("a.txt")).mtime_ns >= before
    sub = await fs.stat("sub")
    assert sub.is_dir and not sub.is_file
    assert [i.path for i in await fs.list_dir()] == ["a.txt", "log", "sub"]
    assert [i.path for i in await fs.list_dir("sub")] == ["sub/b.txt", "sub/new.bin"]

    await fs.make_dir("new/nested/dir")
    await fs.make_dir("new/nested/dir")  # exists: no error
    assert (await fs.stat("new/nested/dir")).is_dir
    await fs.remove("new/nested/dir")
    assert not await fs.exists("new/nested/dir") and await fs.exists("new/nested")
    await fs.remove("a.txt")
    assert not await fs.exists("a.txt")


async def test_concurrent_appends_never_interleave(files: FilesBackend) -> None:
    fs = files.open_fs()
    records = [bytes([65 + k]) * 5000 + b"\n" for k in range(8)]
    async with trio.open_nursery() as nursery:
        for record in records:
            nursery.start_soon(fs.append, "log", record)
    lines = (await fs.read_bytes("log")).split(b"\n")
    assert lines.pop() == b""
    assert sorted(lines) == sorted(r[:-1] for r in records)
