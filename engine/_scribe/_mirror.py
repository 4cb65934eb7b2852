"""The markdown mirror of a worklog, written into the session's work tree."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .._ports._fs import FileSystem
from .._ports._session_store import SessionRecord
from .._ports._summary_record import Summary
from .._ports._worklog_records import WorklogEntry
from ._worklog_markdown import render_markdown

__all__ = ["write_mirror"]


async def write_mirror(
    fs: FileSystem,
    path: str,
    entries: Sequence[WorklogEntry],
    record: SessionRecord,
    branch: str | None,
    summary: Summary | None,
) -> None:
    """Write the worklog's markdown to ``path`` (root-relative) atomically: old or new, never torn. Its
    directory gets a ``.gitignore`` of ``*`` so the mirror is never committed.

    Cancellation: the file keeps its old or its new content.
    """
    text = render_markdown(
        entries,
        title=f"Worklog: {record.name}",
        meta={
            "session": record.id,
            "backlog": record.backlog_id,
            "kind": record.kind.value,
            "branch": branch,
        },
        summary=summary,
    )
    parent = Path(path).parent.as_posix()
    if parent not in ("", "."):
        await fs.make_dir(parent)
        ignore_file = f"{parent}/.gitignore"
        if not await fs.exists(ignore_file):
            await fs.write_text(ignore_file, "*\n")
    await fs.write_text(path, text)
