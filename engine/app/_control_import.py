"""The daemon's ``import_transcript`` operation: a transcript file attached to its session and
imported now (``scribe import`` calls it once per file, again while an answer says ``done``
false).

**Which session.** A session named in the request; else the session the transcript's own session
id names as its agent session id (the session a hook started for that conversation, or the one an
earlier import created); else a new session, created completed, on the work tree of the
transcript's ``cwd`` (its root when git finds one, else the path itself), with the transcript's
id as its agent session id, so the next import finds it. A transcript that names no session id
(or one that is no agent session id: over :data:`~engine.NAME_MAX` characters, not printable)
gets ``file:`` and a hash of its path as one.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final, final

import trio

import adapters

from .._core._errors import InvalidArgumentError
from .._core._limits import NAME_MAX
from .._core._state import SessionState
from .._ports._session_store import SessionRecord, SessionStore
from .._scribe._agent_sessions import agent_session
from .._scribe._scribe import Scribe
from ._transcript_import import READERS, TranscriptImporter

__all__ = ["HEAD_BYTES", "ControlImport"]

#: Bytes of a transcript read to learn its session id, work tree and branch.
HEAD_BYTES: Final = 1024 * 1024
#: Records of a transcript's head looked at for them.
_HEAD_RECORDS: Final = 200

Op = Callable[[Any], Awaitable[Any]]
RepoKey = Callable[[str], Awaitable[str]]


@final
class ControlImport:
    """Answers ``import_transcript`` (:data:`ops`).

    Args:
        importer: the daemon's transcript importer.
        scribe: resolves session references.
        registry: where a new completed session is registered.
        repo_key: the work tree root of an absolute path (or the path itself).
    """

    def __init__(
        self,
        *,
        importer: TranscriptImporter,
        scribe: Scribe,
        registry: SessionStore,
        repo_key: RepoKey,
    ) -> None:
        self.importer = importer
        self.scribe = scribe
        self.registry = registry
        self._repo_key = repo_key
        self._creating = trio.Lock()
        self.ops: dict[str, Op] = {"import_transcript": self._import_transcript}

    async def _head(self, agent: str, path: str) -> dict[str, Any]:
        """The transcript's session id, cwd, branch and first timestamp (each None if absent)."""
        reader = functools.partial(READERS[agent], path, offset=0, max_bytes=HEAD_BYTES)
        batch = await trio.to_thread.run_sync(reader, abandon_on_cancel=True)
        out: dict[str, Any] = {"session_id": None, "cwd": None, "git_branch": None, "at": None}
        for record in batch.records[:_HEAD_RECORDS]:
            for name, value in (
                ("session_id", record.session_id),
                ("cwd", record.cwd),
                ("git_branch", record.git_branch),
                ("at", record.timestamp),
            ):
                if out[name] is None and value is not None:
                    out[name] = value
        return out

    async def _session_for(
        self, agent: str, path: str, head: dict[str, Any]
    ) -> tuple[SessionRecord, bool]:
        """The session the transcript goes to, and whether it was created now."""
        agent_id = (head["session_id"] or "").strip()
        if not agent_id or len(agent_id) > NAME_MAX or not agent_id.isprintable():
            agent_id = "file:" + hashlib.sha256(path.encode("utf-8")).hexdigest()[:32]
        async with self._creating:
            found = await agent_session(self.registry, agent_id)
            if found is not None:
                return found, False
            cwd = head["cwd"]
            repo = await self._repo_key(cwd) if cwd and os.path.isabs(cwd) else None
            branch = head["git_branch"]
            at = head["at"].timestamp() if head["at"] is not None else time.time()
            record = SessionRecord(
                id=os.urandom(8).hex(),
                name=f"{agent} conversation {agent_id[:24]}",
                state=SessionState.COMPLETED,
                tags=("imported", agent),
                description=(
                    f"Imported {agent} conversation"
                    + (f" on branch {branch}" if branch else "")
                    + f" from {path}"
                )[:4096],
                repo_path=None if repo is None else Path(repo),
                created_at=at,
                last_activity=at,
                agent_session_id=agent_id,
            )
            return await self.registry.register(record), True

    async def _import_transcript(self, a: adapters.ImportTranscriptArgs) -> Any:
        if not os.path.isabs(a.path) or "\0" in a.path:
            raise InvalidArgumentError(
                f"path must be absolute (the daemon's working directory is not yours), "
                f"not {a.path[:200]!r}"
            )
        head = await self._head(a.agent, a.path)
        if a.session is not None:
            record, created = await self.scribe.resolve(a.session), False
        else:
            record, created = await self._session_for(a.agent, a.path, head)
        report = await self.importer.import_file(
            session_id=record.id,
            path=a.path,
            agent=a.agent,
            agent_session_id=record.agent_session_id,
            byte_budget=a.budget,
        )
        return {
            "session": record.id,
            "created": created,
            "agent_session_id": record.agent_session_id,
            "cwd": head["cwd"],
            "git_branch": head["git_branch"],
            "offset": report.offset,
            "size": report.size,
            "done": report.done,
            **report.counts.as_dict(),
        }
