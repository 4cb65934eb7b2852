"""The transcript scheduler protocol: an agent's transcript handed over to be read into memory in the
background (the stack's transcript importer is one). No I/O here."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["TranscriptScheduler"]


@runtime_checkable
class TranscriptScheduler(Protocol):
    """Has agents' transcripts read into memory, incrementally, off the hook's request path."""

    async def schedule(
        self, *, session_id: str | None, agent_session_id: str, path: str, agent: str
    ) -> None:
        """Have the transcript at ``path`` read (past what was read of it before) soon.

        Args:
            session_id: the Scribe session the conversation belongs to (None: the agent worked
                outside any work tree).
            agent_session_id: the agent's own session id.
            path: the transcript file, absolute.
            agent: which agent wrote it (``claude-code``).

        Returns at once: the reading happens later, and a failure of it is the importer's to
        log, never the caller's.

        Cancellation: nothing is scheduled.
        """
        ...
