"""Finding the transcript files to import: a file as given, or the ``*.jsonl`` under a folder.

Claude Code keeps one file per session in ``~/.claude/projects/<project>/<session>.jsonl`` (and a
subagent's in ``<project>/<session>/subagents/``); Codex CLI keeps them in dated folders,
``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``. So a folder is searched a few levels down
(:data:`MAX_DEPTH`) for regular ``*.jsonl`` files, without following symlinks (a loop cannot trap
the search, a link cannot lead it elsewhere), and the search is bounded in what it looks at.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from engine import ScribeError

from ..fs._errors import os_errors
from ..fs._regular import require_regular

__all__ = [
    "MAX_DEPTH",
    "MAX_SEARCH_ENTRIES",
    "MAX_TRANSCRIPT_FILES",
    "TranscriptSearchLimitError",
    "find_transcripts",
]

#: Transcript files one search returns at most.
MAX_TRANSCRIPT_FILES: Final = 100_000
#: Directory entries one search looks at at most.
MAX_SEARCH_ENTRIES: Final = 1_000_000
#: Folder levels searched below the folder given (Codex's ``sessions/YYYY/MM/DD`` is 3).
MAX_DEPTH: Final = 6


class TranscriptSearchLimitError(ScribeError):
    """A folder holds more than a search may look at: import a folder further down.

    Attributes:
        path: the folder searched.
        limit: the bound that was reached (files found or entries looked at).
    """

    def __init__(self, path: Path, limit: int, what: str) -> None:
        super().__init__(f"{path}: more than {limit:,} {what}; import a folder further down")
        self.path = path
        self.limit = limit


def find_transcripts(path: str | os.PathLike[str]) -> list[Path]:
    """The transcript files ``path`` names, for an import.

    A file is returned as it is (resolved; only a regular file). A folder gives every regular file
    ending in ``.jsonl`` at most :data:`MAX_DEPTH` levels below it, symlinks not followed, sorted
    by path (for Codex's dated folders, oldest first). Synchronous; from a worker thread a
    cancellation abandons the thread, which ends once the bounded search is done.

    Raises:
        NoSuchFileError: ``path`` does not exist.
        NotRegularFileError: ``path`` is a FIFO, socket or device.
        FileAccessError: a folder could not be read.
        TranscriptSearchLimitError: more than :data:`MAX_TRANSCRIPT_FILES` files found, or more
            than :data:`MAX_SEARCH_ENTRIES` entries looked at.
    """
    with os_errors():
        real = os.path.realpath(Path(path))
        st = os.stat(real)
        if not stat.S_ISDIR(st.st_mode):
            require_regular(st, real)
            return [Path(real)]
        root = Path(real)
        found: list[Path] = []
        seen = 0
        pending: list[tuple[str, int]] = [(real, 0)]
        while pending:
            folder, depth = pending.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    seen += 1
                    if seen > MAX_SEARCH_ENTRIES:
                        raise TranscriptSearchLimitError(root, MAX_SEARCH_ENTRIES, "entries")
                    if entry.is_dir(follow_symlinks=False):
                        if depth < MAX_DEPTH:
                            pending.append((entry.path, depth + 1))
                    elif entry.name.endswith(".jsonl") and entry.is_file(follow_symlinks=False):
                        found.append(Path(entry.path))
                        if len(found) > MAX_TRANSCRIPT_FILES:
                            raise TranscriptSearchLimitError(
                                root, MAX_TRANSCRIPT_FILES, "transcript files"
                            )
    return sorted(found)
