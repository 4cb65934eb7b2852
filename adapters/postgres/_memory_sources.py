"""Memory sources for the rehydrator that need I/O: worklogs and summaries in PostgreSQL, and
external tools run as subprocesses.

Citations: ``worklogs:<worklog entry id>``, ``summaries:<session id>/<version>``, and for a
subprocess source whatever ids the tool prints.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any, Final, final

import trio

from engine import (
    DecisionsSource,
    Evidence,
    FactsSource,
    InvalidArgumentError,
    MemorySource,
    MessagesSource,
    ScribeError,
    SourceQuery,
    check_limit,
    check_text,
    fuse_ranks,
)

from ._database import Database
from ._memory_ranking import fts_query_text
from ._memory_store import PostgresMemoryStore

__all__ = [
    "SubprocessSource",
    "SubprocessSourceError",
    "SummarySource",
    "WorklogSource",
    "default_memory_sources",
    "payload_text",
]

_MAX_TEXT: Final = 1200
_MAX_OUTPUT: Final = 4 * 1024 * 1024


class SubprocessSourceError(ScribeError):
    """An external source tool failed (non-zero exit) or printed something that is not evidence."""


def payload_text(payload: Any, *, limit: int = _MAX_TEXT) -> str:
    """A JSON payload as one line of ``key: value`` text (nested values flattened)."""
    parts: list[str] = []

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, Mapping):
            for k in value:
                walk(value[k], f"{prefix}{k}." if prefix else f"{k}.")
        elif isinstance(value, list):
            if all(not isinstance(v, Mapping | list) for v in value):
                items = ", ".join(str(v) for v in value if v is not None and v != "")
                label = prefix.rstrip(".")
                if items:
                    parts.append(f"{label}: {items}" if label else items)
            else:
                for v in value:
                    walk(v, prefix)
        elif value is not None and value != "":
            label = prefix.rstrip(".")
            parts.append(f"{label}: {value}" if label else str(value))

    walk(payload, "")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


# Both rankings over the session's (or every session's) worklog: full text over the payload's
# string values, and recency.
_WORKLOG_TEMPLATE: Final = (
    "WITH q AS (SELECT websearch_to_tsquery('english', %(fts)s) AS tsq),"
    " fts AS (SELECT w.id, row_number() OVER (ORDER BY ts_rank_cd(jsonb_to_tsvector('english',"
    " w.payload, '[\"string\"]'), q.tsq) DESC, w.id DESC) AS r FROM worklog_entries w, q"
    " WHERE jsonb_to_tsvector('english', w.payload, '[\"string\"]') @@ q.tsq {filter}"
    " ORDER BY r LIMIT %(lim)s),"
    " recent AS (SELECT w.id, row_number() OVER (ORDER BY w.created_at DESC, w.id DESC) AS r"
    " FROM worklog_entries w WHERE true {filter}"
    " ORDER BY r LIMIT %(recent)s)"
    " SELECT w.id, w.session_id, w.seq, w.kind, w.payload,"
    " fts.r AS fts_rank, recent.r AS recent_rank"
    " FROM worklog_entries w LEFT JOIN fts ON fts.id = w.id LEFT JOIN recent ON recent.id = w.id"
    " WHERE fts.id IS NOT NULL OR recent.id IS NOT NULL"
)

_SUMMARY_TEMPLATE: Final = (
    "WITH latest AS (SELECT DISTINCT ON (s.session_id) s.session_id,"
    " s.version, s.created_at, s.payload FROM summaries s"
    " WHERE true {filter} ORDER BY s.session_id, s.version DESC),"
    " q AS (SELECT websearch_to_tsquery('english', %(fts)s) AS tsq)"
    " SELECT l.session_id, l.version, l.payload,"
    " CASE WHEN jsonb_to_tsvector('english', l.payload, '[\"string\"]') @@ q.tsq"
    " THEN row_number() OVER (ORDER BY jsonb_to_tsvector('english', l.payload, '[\"string\"]')"
    " @@ q.tsq DESC, ts_rank_cd(jsonb_to_tsvector('english', l.payload, '[\"string\"]'), q.tsq)"
    " DESC, l.created_at DESC) END AS fts_rank,"
    " row_number() OVER (ORDER BY l.created_at DESC, l.session_id) AS recent_rank"
    " FROM latest l, q ORDER BY recent_rank LIMIT %(lim)s"
)

# A statement per case (one session / every session) so a prepared generic plan stays good.
_WORKLOG_SQL: Final = {
    True: _WORKLOG_TEMPLATE.replace("{filter}", "AND w.session_id = %(sid)s"),
    False: _WORKLOG_TEMPLATE.replace("{filter}", ""),
}
_SUMMARY_SQL: Final = {
    True: _SUMMARY_TEMPLATE.replace("{filter}", "AND s.session_id = %(sid)s"),
    False: _SUMMARY_TEMPLATE.replace("{filter}", ""),
}


def _ranks(row: Mapping[str, Any]) -> dict[str, int]:
    return {
        name: int(row[f"{name}_rank"])
        for name in ("fts", "recent")
        if row.get(f"{name}_rank") is not None
    }


class _TableSource:
    """A memory source over one table of the database."""

    def __init__(self, db: Database, *, name: str) -> None:
        self._db = db
        self._name = check_text("name", name)

    @property
    def name(self) -> str:
        """The source name."""
        return self._name


@final
class WorklogSource(_TableSource):
    """Worklog entries (table ``worklog_entries``) ranked by full text and by recency; the list is
    ordered by :func:`engine.fuse_ranks` of the two ranks (ties: the newer entry first)."""

    def __init__(self, db: Database, *, name: str = "worklogs", recent: int = 5) -> None:
        super().__init__(db, name=name)
        self._recent = check_limit(recent, what="recent")

    async def search(self, query: SourceQuery) -> Sequence[Evidence]:
        """Query the worklog.

        Cancellation: the query is cancelled on the server.
        """
        rows = await self._db.fetch(
            _WORKLOG_SQL[query.session_id is not None],
            {
                "sid": query.session_id,
                "fts": fts_query_text(query.text),
                "lim": query.limit,
                "recent": min(self._recent, query.limit),
            },
        )
        by_id = {row["id"]: row for row in rows}
        ranks = {row["id"]: _ranks(row) for row in rows}
        fused = fuse_ranks(ranks, tiebreak=lambda i: -i, limit=query.limit)
        return [
            Evidence(
                source=self._name,
                id=str(i),
                text=f"{by_id[i]['kind']}: {payload_text(by_id[i]['payload'])}",
                ranks=ranks[i],
                metadata={"session_id": by_id[i]["session_id"], "seq": by_id[i]["seq"]},
            )
            for i, _ in fused
        ]


@final
class SummarySource(_TableSource):
    """The latest summary of the session (or of every session), ranked by full text and recency
    (the list comes newest first; each item keeps both ranks for the rehydrator's fusion)."""

    def __init__(self, db: Database, *, name: str = "summaries") -> None:
        super().__init__(db, name=name)

    async def search(self, query: SourceQuery) -> Sequence[Evidence]:
        """Query the summaries.

        Cancellation: the query is cancelled on the server.
        """
        rows = await self._db.fetch(
            _SUMMARY_SQL[query.session_id is not None],
            {"sid": query.session_id, "fts": fts_query_text(query.text), "lim": query.limit},
        )
        return [
            Evidence(
                source=self._name,
                id=f"{row['session_id']}/{row['version']}",
                text=f"summary v{row['version']}: {payload_text(row['payload'])}",
                ranks=_ranks(row),
                metadata={"session_id": row["session_id"], "version": row["version"]},
            )
            for row in rows
        ]


async def _kill_group(process: trio.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:  # already gone
        pass
    await process.wait()


@final
class SubprocessSource:
    """An external tool as a memory source.

    The tool is started once per search with ``argv`` in its own process group. It reads one
    JSON object on stdin (``{"query", "session_id", "role", "limit"}``) and prints one JSON object
    per line: ``{"id": str, "text": str}`` and optionally ``"rank": int`` and ``"pinned": bool``.
    Lines are taken best first.

    Args:
        name: The source name.
        argv: The command.
        env: Extra environment variables.
        cwd: Working directory.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        if not argv or any(not isinstance(a, str) for a in argv) or isinstance(argv, str):
            raise InvalidArgumentError("argv must be a non-empty sequence of strings")
        self._name = name
        self._argv = list(argv)
        self._env = dict(env) if env is not None else None
        self._cwd = cwd

    @property
    def name(self) -> str:
        """The source name."""
        return self._name

    async def search(self, query: SourceQuery) -> Sequence[Evidence]:
        """Run the tool and parse its output.

        Raises:
            SubprocessSourceError: The tool exited non-zero or printed bad lines.

        Cancellation: the tool's whole process group is killed (SIGKILL) and reaped.
        """
        request = json.dumps(
            {
                "query": query.text,
                "session_id": query.session_id,
                "role": query.role,
                "limit": query.limit,
            }
        ).encode()
        env = None if self._env is None else {**os.environ, **self._env}
        result = await trio.run_process(
            self._argv,
            stdin=request,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            start_new_session=True,
            deliver_cancel=_kill_group,
            env=env,
            cwd=self._cwd,
        )
        if result.returncode != 0:
            tail = result.stderr.decode(errors="replace").strip()[-500:]
            raise SubprocessSourceError(
                f"source {self._name!r}: {self._argv[0]} exited with {result.returncode}: {tail}"
            )
        if len(result.stdout) > _MAX_OUTPUT:
            raise SubprocessSourceError(f"source {self._name!r}: output larger than 4 MiB")
        items: list[Evidence] = []
        for number, line in enumerate(result.stdout.decode(errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                item_id, text = obj["id"], obj["text"]
                rank = obj.get("rank")
                if not isinstance(item_id, str | int) or not isinstance(text, str):
                    raise TypeError("id must be a string or int and text a string")
                if rank is not None and (not isinstance(rank, int) or rank < 1):
                    raise TypeError("rank must be a positive int")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise SubprocessSourceError(
                    f"source {self._name!r}: line {number} is not an evidence object: {exc}"
                ) from None
            items.append(
                Evidence(
                    source=self._name,
                    id=str(item_id),
                    text=text,
                    ranks={"tool": rank} if rank is not None else {},
                    pinned=bool(obj.get("pinned", False)),
                )
            )
            if len(items) >= query.limit:
                break
        return items


def default_memory_sources(
    db: Database,
    store: PostgresMemoryStore,
    *,
    extra: Sequence[MemorySource] = (),
) -> list[MemorySource]:
    """The standard sources: facts, messages, decisions, worklogs, summaries, plus ``extra``
    (for example a :class:`engine.GitContextSource` or a :class:`SubprocessSource`)."""
    sources: list[MemorySource] = [
        FactsSource(store),
        MessagesSource(store),
        DecisionsSource(store),
        WorklogSource(db),
        SummarySource(db),
    ]
    return sources + list(extra)
