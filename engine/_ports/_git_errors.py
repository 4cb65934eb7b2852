"""The errors a :class:`engine.Git` implementation raises, rooted at :class:`GitError`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .._core._errors import ScribeError

__all__ = [
    "GitCommandError",
    "GitError",
    "GitNotFoundError",
    "NotARepositoryError",
    "StaleLockError",
]


class GitError(ScribeError):
    """Root of the errors a :class:`Git` implementation raises."""


class GitNotFoundError(GitError):
    """The ``git`` executable could not be started (not installed or not on ``PATH``)."""


class NotARepositoryError(GitError):
    """The path is not inside a git work tree.

    Attributes:
        path: the path that was asked for.
    """

    def __init__(self, path: Path, detail: str = "") -> None:
        message = f"not a git work tree: {path}"
        super().__init__(f"{message} ({detail})" if detail else message)
        self.path = path


class StaleLockError(GitError):
    """A ``index.lock`` was found when the repository was opened; it is reported, never deleted.

    Another git process may still own it. If none does, a person removes it after checking.

    Attributes:
        path: the lock file's absolute path.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(f"git lock file exists (another git process, or a stale lock): {path}")
        self.path = path


class GitCommandError(GitError):
    """A git command exited with a non-zero status.

    Attributes:
        command: the argument vector that was run.
        exit_code: the process exit status (negative: killed by that signal).
        stderr: what git wrote to its standard error, decoded.
    """

    def __init__(self, command: Sequence[str], exit_code: int, stderr: str) -> None:
        self.command = tuple(command)
        self.exit_code = exit_code
        self.stderr = stderr
        first_line = stderr.strip().splitlines()[0] if stderr.strip() else "no output"
        super().__init__(f"{' '.join(self.command)} exited with {exit_code}: {first_line}")
