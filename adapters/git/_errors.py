"""The git family's one error table: what starting a git process raises, as the engine's git errors."""

from __future__ import annotations

from engine import GitNotFoundError

from .._errors import ErrorTable

__all__ = ["git_errors"]


def git_errors(git: str) -> ErrorTable:
    """The table for starting the git executable ``git`` (first match wins).

    A missing or non-executable ``git`` becomes :class:`engine.GitNotFoundError`; a missing file that
    is not git (the working directory, say) passes through unchanged.
    """

    def not_runnable(exc: OSError) -> GitNotFoundError | None:
        if (
            isinstance(exc, FileNotFoundError)
            and exc.filename is not None
            and str(exc.filename) != git
        ):
            return None
        return GitNotFoundError(f"cannot run git executable {git!r}: {exc}")

    return {FileNotFoundError: not_runnable, PermissionError: not_runnable}
