"""Parsers for git's machine-readable output (``-z`` forms), bytes in, typed records out.

Pure functions with no I/O, so every output shape can be tested directly. Paths are decoded with
:func:`os.fsdecode`, which keeps bytes that are not UTF-8 as surrogate escapes.
"""

from __future__ import annotations

import os
from datetime import datetime

from engine import (
    BranchInfo,
    DiffStat,
    FileDiffStat,
    GitError,
    IgnoredEntry,
    LogEntry,
    NameStatusEntry,
    OrdinaryEntry,
    RenamedEntry,
    Status,
    StatusEntry,
    UnmergedEntry,
    UntrackedEntry,
)

__all__ = [
    "LOG_FORMAT",
    "GitParseError",
    "parse_diff_numstat",
    "parse_log",
    "parse_name_status",
    "parse_status",
]

#: ``git log -z --format=`` fields: oid, parents, author name, author email, author date,
#: committer date, subject, body. ``-z`` puts a NUL between commits, so every field and every
#: commit is NUL-separated and a message may contain any other byte.
LOG_FORMAT = "%H%x00%P%x00%an%x00%ae%x00%aI%x00%cI%x00%s%x00%b"
_LOG_FIELDS = 8


class GitParseError(GitError):
    """Git printed something the parser does not understand (a git version with another format)."""

    def __init__(self, what: str, record: bytes) -> None:
        super().__init__(f"cannot parse git {what} output near {record[:120]!r}")
        self.record = record


def _path(raw: bytes) -> str:
    return os.fsdecode(raw)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def parse_status(data: bytes) -> Status:
    """Parse ``git status --porcelain=v2 --branch -z`` output.

    Args:
        data: the raw standard output.

    Returns:
        The branch headers and the entries in git's order.

    Raises:
        GitParseError: a record has an unknown shape.
    """
    records = data.split(b"\0")
    if records and records[-1] == b"":
        records.pop()
    oid: str | None = None
    head: str | None = None
    upstream: str | None = None
    ahead: int | None = None
    behind: int | None = None
    entries: list[StatusEntry] = []
    i = 0
    while i < len(records):
        record = records[i]
        i += 1
        kind = record[:2]
        try:
            if kind == b"# ":
                key, _, value = record[2:].partition(b" ")
                if key == b"branch.oid":
                    oid = None if value == b"(initial)" else _text(value)
                elif key == b"branch.head":
                    head = None if value == b"(detached)" else _path(value)
                elif key == b"branch.upstream":
                    upstream = _path(value)
                elif key == b"branch.ab":
                    a, b = value.split(b" ")
                    ahead, behind = int(a.lstrip(b"+")), int(b.lstrip(b"-"))
                # other headers (stash, future additions) are skipped
            elif kind == b"1 ":
                f = record.split(b" ", 8)
                entries.append(
                    OrdinaryEntry(
                        path=_path(f[8]),
                        index=_text(f[1][:1]),
                        worktree=_text(f[1][1:2]),
                        submodule=_text(f[2]),
                        mode_head=_text(f[3]),
                        mode_index=_text(f[4]),
                        mode_worktree=_text(f[5]),
                        oid_head=_text(f[6]),
                        oid_index=_text(f[7]),
                    )
                )
            elif kind == b"2 ":
                f = record.split(b" ", 9)
                orig = records[i]
                i += 1
                score = f[8]
                entries.append(
                    RenamedEntry(
                        path=_path(f[9]),
                        orig_path=_path(orig),
                        index=_text(f[1][:1]),
                        worktree=_text(f[1][1:2]),
                        copied=score[:1] == b"C",
                        score=int(score[1:]),
                        submodule=_text(f[2]),
                        mode_head=_text(f[3]),
                        mode_index=_text(f[4]),
                        mode_worktree=_text(f[5]),
                        oid_head=_text(f[6]),
                        oid_index=_text(f[7]),
                    )
                )
            elif kind == b"u ":
                f = record.split(b" ", 10)
                entries.append(
                    UnmergedEntry(
                        path=_path(f[10]),
                        index=_text(f[1][:1]),
                        worktree=_text(f[1][1:2]),
                        submodule=_text(f[2]),
                        mode_stage1=_text(f[3]),
                        mode_stage2=_text(f[4]),
                        mode_stage3=_text(f[5]),
                        mode_worktree=_text(f[6]),
                        oid_stage1=_text(f[7]),
                        oid_stage2=_text(f[8]),
                        oid_stage3=_text(f[9]),
                    )
                )
            elif kind == b"? ":
                entries.append(UntrackedEntry(_path(record[2:])))
            elif kind == b"! ":
                entries.append(IgnoredEntry(_path(record[2:])))
            else:
                raise GitParseError("status", record)
        except (IndexError, ValueError) as exc:
            raise GitParseError("status", record) from exc
    branch = BranchInfo(oid=oid, head=head, upstream=upstream, ahead=ahead, behind=behind)
    return Status(branch=branch, entries=tuple(entries))


def parse_log(data: bytes) -> tuple[LogEntry, ...]:
    """Parse ``git log -z --format=LOG_FORMAT`` output.

    Args:
        data: the raw standard output.

    Returns:
        The commits in git's order (newest first by default).

    Raises:
        GitParseError: the field count does not match the format.
    """
    if not data:
        return ()
    fields = data.split(b"\0")
    if len(fields) % _LOG_FIELDS == 1 and fields[-1] == b"":
        fields.pop()  # git ends the last commit with a NUL too
    if len(fields) % _LOG_FIELDS:
        raise GitParseError("log", data)
    commits: list[LogEntry] = []
    for start in range(0, len(fields), _LOG_FIELDS):
        oid, parents, name, email, adate, cdate, subject, body = fields[start : start + _LOG_FIELDS]
        try:
            commits.append(
                LogEntry(
                    oid=_text(oid).strip(),
                    parents=tuple(_text(parents).split()),
                    author_name=_text(name),
                    author_email=_text(email),
                    author_time=datetime.fromisoformat(_text(adate)),
                    committer_time=datetime.fromisoformat(_text(cdate)),
                    subject=_text(subject),
                    body=_text(body).rstrip("\n"),
                )
            )
        except ValueError as exc:
            raise GitParseError("log", oid + b" " + adate) from exc
    return tuple(commits)


def parse_diff_numstat(data: bytes) -> DiffStat:
    """Parse ``git diff --numstat -z`` output (renames give an empty path then old and new).

    Args:
        data: the raw standard output.

    Returns:
        The per-file counts.

    Raises:
        GitParseError: a record has an unknown shape.
    """
    records = data.split(b"\0")
    files: list[FileDiffStat] = []
    i = 0
    while i < len(records):
        record = records[i]
        i += 1
        if not record:
            continue
        try:
            added, deleted, path = record.split(b"\t", 2)
            old_path: str | None = None
            if path:
                new_path = _path(path)
            else:
                old_path, new_path = _path(records[i]), _path(records[i + 1])
                i += 2
            files.append(
                FileDiffStat(
                    path=new_path,
                    added=None if added == b"-" else int(added),
                    deleted=None if deleted == b"-" else int(deleted),
                    old_path=old_path,
                )
            )
        except (IndexError, ValueError) as exc:
            raise GitParseError("diff --numstat", record) from exc
    return DiffStat(files=tuple(files))


def parse_name_status(data: bytes) -> tuple[NameStatusEntry, ...]:
    """Parse ``git diff --name-status -z`` output.

    Args:
        data: the raw standard output.

    Returns:
        One entry per changed file.

    Raises:
        GitParseError: a record has an unknown shape.
    """
    records = data.split(b"\0")
    entries: list[NameStatusEntry] = []
    i = 0
    while i < len(records):
        record = records[i]
        i += 1
        if not record:
            continue
        try:
            letter = _text(record[:1])
            if letter in ("R", "C"):
                score = int(record[1:]) if len(record) > 1 else None
                old, new = _path(records[i]), _path(records[i + 1])
                i += 2
                entries.append(NameStatusEntry(letter, new, old_path=old, score=score))
            else:
                entries.append(NameStatusEntry(letter, _path(records[i])))
                i += 1
        except (IndexError, ValueError) as exc:
            raise GitParseError("diff --name-status", record) from exc
    return tuple(entries)
