"""One change to a Claude Code settings file: read it, apply a pure edit, write it back atomically
(or only show the change). Imports no trio.

Reading: a missing file is ``{}``; a file that is not a regular file, a symlink, a file in a
directory that is a symlink, a file larger than :data:`MAX_SETTINGS_FILE`, or one that is not a
UTF-8 JSON object (``NaN`` and ``Infinity`` are not JSON) is refused with a typed error and left
untouched. Writing: nothing is written when the edit changes nothing; otherwise the new text goes to
a temporary file next to the old one, fsynced, renamed over it, and the directory fsynced
(``adapters.fs``'s atomic writes), so a crash leaves the old file or the new one. The file's
permission bits are kept. The text is written with the indentation the file had (two spaces for a
new one) and keeps its final newline or its lack of one, so a file JSON wrote with that indentation
comes back byte for byte after an edit that is undone. A file changed by someone else between the
read and the rename is refused (:class:`SettingsChangedError`), not overwritten.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..fs._atomic import commit_temp, discard_temp, write_temp
from ..fs._confinement import Confinement
from ..fs._errors import os_errors
from ..fs._regular import kind_of, open_regular
from ._claude_settings import ClaudeSettingsError, SettingsFormatError

__all__ = [
    "MAX_SETTINGS_FILE",
    "SettingsChange",
    "SettingsChangedError",
    "SettingsPathError",
    "apply_settings_change",
]

#: The largest settings file read, in bytes (Claude Code's own are a few kilobytes).
MAX_SETTINGS_FILE: Final = 4 * 1024 * 1024

_INDENT: Final = re.compile(r"\n([ \t]+)\S")


class SettingsPathError(ClaudeSettingsError):
    """The settings path is not one Scribe writes: a symlink, something other than a regular file,
    or inside a directory that is a symlink or no directory. Nothing was read or written.

    Attributes:
        path: the settings path.
        detail: what it is instead.
    """

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path} {detail}; refused")
        self.path = path
        self.detail = detail


class SettingsChangedError(ClaudeSettingsError):
    """The settings file changed while it was being edited (another program wrote it); the edit was
    dropped and the file holds the other program's version. Running the command again is safe."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} changed while it was being edited; nothing written, run it again")
        self.path = path


@dataclass(frozen=True, slots=True)
class SettingsChange:
    """What one edit did (or, for a dry run, would do) to one settings file.

    Attributes:
        path: the settings file.
        before: its text before (None: there was no file).
        after: its text after (None: still no file). Equal to ``before`` when nothing changed.
        written: whether the file was written (False for a dry run and for no change).
    """

    path: Path
    before: str | None
    after: str | None
    written: bool

    @property
    def changed(self) -> bool:
        """Whether the edit changes the file."""
        return self.before != self.after

    def diff(self) -> str:
        """The change as a unified diff (empty when nothing changes)."""
        if not self.changed:
            return ""
        lines = difflib.unified_diff(
            (self.before or "").splitlines(keepends=True),
            (self.after or "").splitlines(keepends=True),
            fromfile=f"{self.path} (before)" if self.before is not None else "/dev/null",
            tofile=f"{self.path} (after)",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _check_directory(directory: Path, path: Path) -> None:
    with os_errors():
        try:
            st = os.lstat(directory)
        except FileNotFoundError:
            return  # created on write, if its own parent exists
    if stat.S_ISLNK(st.st_mode):
        raise SettingsPathError(path, f"is in {directory}, a symlink to {os.readlink(directory)}")
    if not stat.S_ISDIR(st.st_mode):
        raise SettingsPathError(path, f"is in {directory}, a {kind_of(st.st_mode)}")


def _read(path: Path) -> tuple[str | None, os.stat_result | None]:
    """The file's text and its ``fstat`` (None, None: no file)."""
    with os_errors():
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None, None
    if stat.S_ISLNK(st.st_mode):
        raise SettingsPathError(path, f"is a symlink to {os.readlink(path)}")
    if not stat.S_ISREG(st.st_mode):
        raise SettingsPathError(path, f"is a {kind_of(st.st_mode)}, not a regular file")
    fd = open_regular(str(path), os.O_RDONLY)
    try:
        with os_errors():
            opened = os.fstat(fd)
            chunks: list[bytes] = []
            size = 0
            while size <= MAX_SETTINGS_FILE:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    finally:
        os.close(fd)
    if size > MAX_SETTINGS_FILE:
        raise SettingsFormatError(f"is larger than {MAX_SETTINGS_FILE} bytes", path)
    try:
        return b"".join(chunks).decode("utf-8"), opened
    except UnicodeDecodeError as exc:
        raise SettingsFormatError(
            f"is not UTF-8 ({exc.reason} at byte {exc.start})", path
        ) from None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse(text: str, path: Path) -> dict[str, Any]:
    try:
        value = json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise SettingsFormatError("is nested too deeply", path) from None
    except ValueError as exc:
        raise SettingsFormatError(f"is not JSON ({exc})", path) from None
    if not isinstance(value, dict):
        raise SettingsFormatError(f"holds a JSON {type(value).__name__}, not an object", path)
    return value


def _render(settings: dict[str, Any], before: str | None) -> str:
    """``settings`` as JSON laid out like ``before`` (its indentation and final newline)."""
    indent: str | int = 2
    end = "\n"
    if before is not None:
        found = _INDENT.search(before)
        if found is not None:
            indent = found.group(1)
        end = "\n" if before.endswith("\n") else ""
    return json.dumps(settings, indent=indent, ensure_ascii=False) + end


def _same(st: os.stat_result | None, now: os.stat_result | None) -> bool:
    if st is None or now is None:
        return st is None and now is None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode) == (
        now.st_dev,
        now.st_ino,
        now.st_size,
        now.st_mtime_ns,
        now.st_mode,
    )


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _write(path: Path, text: str, read: os.stat_result | None) -> None:
    directory = path.parent
    with os_errors():
        try:
            directory.mkdir()
        except FileExistsError:
            pass
        real_dir = os.path.realpath(directory)
    _check_directory(directory, path)
    dir_fd, temp, name = write_temp(Confinement(real_dir), path.name, text.encode("utf-8"))
    try:
        with os_errors():
            now = _lstat(path)
    except BaseException:
        discard_temp(dir_fd, temp)
        raise
    if not _same(read, now):
        discard_temp(dir_fd, temp)
        raise SettingsChangedError(path)
    commit_temp(dir_fd, temp, name)


def apply_settings_change(
    path: Path,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    dry_run: bool = False,
) -> SettingsChange:
    """Apply ``change`` (a pure edit such as :func:`install_hooks`) to the settings file ``path``.

    A missing file is read as ``{}``; its directory (``.claude``) is created when the file is
    written. An edit that changes nothing writes nothing (the file keeps its bytes and its time).

    Cancellation: none; it is synchronous and blocks for milliseconds. From async code run it in a
    worker thread, which a cancellation waits for (the file is then old or new, never torn).

    Args:
        path: the settings file (:func:`settings_path`).
        change: settings -> new settings; it gets its own copy.
        dry_run: only compute the change (nothing is created or written).

    Returns:
        What changed; :meth:`SettingsChange.diff` shows it.

    Raises:
        SettingsPathError: ``path`` or its directory is a symlink or not what it should be.
        SettingsFormatError: the file is too large, not UTF-8, not JSON or not a JSON object, or
            ``change`` refused its content; nothing was written.
        SettingsChangedError: another program wrote the file meanwhile; nothing was written.
        FileAccessError: the OS refused (permissions, a missing parent directory, a full disk).
    """
    path = Path(os.path.abspath(path))
    _check_directory(path.parent, path)
    before, read = _read(path)
    settings = _parse(before, path) if before is not None else {}
    original = json.dumps(settings)
    try:
        after = change(json.loads(original))
    except SettingsFormatError as exc:
        raise SettingsFormatError(exc.detail, path) from None
    if json.dumps(after) == original:
        return SettingsChange(path, before, before, written=False)
    text = _render(after, before)
    if not dry_run:
        _write(path, text, read)
    return SettingsChange(path, before, text, written=not dry_run)
