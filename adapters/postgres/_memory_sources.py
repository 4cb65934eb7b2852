"""Memory sources for the rehydrator over PostgreSQL: worklogs and summaries, and the standard set.

Citations: ``worklogs:<worklog entry id>``, ``summaries:<session id>/<version>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, final

from engine import (
    DecisionsSource,
    Evidence,
    FactsSource,
    MemorySource,
    MessagesSource,
    SourceQuery,
    check_limit,
    check_text,
    fuse_ranks,
)

from ._database import Database
from ._memory_ranking import fts_query_text
from ._memory_store import PostgresMemoryStore

__all__ = [
    "SummarySource",
    "WorklogSource",
    "default_memory_sources",
    "payload_text",
]

_MAX_TEXT: Final = 1200


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


def _filter(alias: str, session: bool, repo: bool) -> str:
    """The rows of one session, of the registered sessions on one work tree, or of either."""
    own = f"{alias}.session_id = %(sid)s"
    on_tree = f"{alias}.session_id IN (SELECT id FROM sessions WHERE repo_path = %(repo)s)"
    if session and repo:
        return f"AND ({own} OR {on_tree})"
    return f"AND {own}" if session else f"AND {on_tree}" if repo else ""


# A statement per case (session or not, repository or not) so a prepared generic plan stays good.
_CASES: Final = [(session, repo) for session in (True, False) for repo in (True, False)]
_WORKLOG_SQL: Final = {
    case: _WORKLOG_TEMPLATE.replace("{filter}", _filter("w", *case)) for case in _CASES
}
_SUMMARY_SQL: Final = {
    case: _SUMMARY_TEMPLATE.replace("{filter}", _filter("s", *case)) for case in _CASES
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
    """Worklog entries (table ``worklog_entries``) of the session, of the registered sessions on
    the repository asked for, or of either, ranked by full text and by recency; the list is ordered by :func:`engine.fuse_ranks` of the two ranks (ties: the newer entry first)."""

    def __init__(self, db: Database, *, name: str = "worklogs", recent: int = 5) -> None:
        super().__init__(db, name=name)
        self._recent = check_limit(recent, what="recent")

    async def search(self, query: SourceQuery) -> Sequence[Evidence]:
        """Query the worklog.

        Cancellation: the query is cancelled on the server.
        """
        rows = await self._db.fetch(
            _WORKLOG_SQL[query.session_id is not None, query.repo is not None],
            {
                "sid": query.session_id,
                "repo": query.repo,
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
    """The latest summary of the session (or of every session, or of those on the repository
    asked for, or of either), ranked by full text and recency
    (the list comes newest first; each item keeps both ranks for the rehydrator's fusion)."""

    def __init__(self, db: Database, *, name: str = "summaries") -> None:
        super().__init__(db, name=name)

    async def search(self, query: SourceQuery) -> Sequence[Evidence]:
        """Query the summaries.

        Cancellation: the query is cancelled on the server.
        """
        rows = await self._db.fetch(
            _SUMMARY_SQL[query.session_id is not None, query.repo is not None],
            {
                "sid": query.session_id,
                "repo": query.repo,
                "fts": fts_query_text(query.text),
                "lim": query.limit,
            },
        )
        out = []
        for row in rows:
            # what the summary says; its metadata (counters, timestamps) is bookkeeping
            said = payload_text({k: v for k, v in row["payload"].items() if k != "metadata"})
            if not said:
                continue
            out.append(
                Evidence(
                    source=self._name,
                    id=f"{row['session_id']}/{row['version']}",
                    text=f"summary v{row['version']}: {said}",
                    ranks=_ranks(row),
                    metadata={"session_id": row["session_id"], "version": row["version"]},
                )
            )
        return out


def default_memory_sources(
    db: Database,
    store: PostgresMemoryStore,
    *,
    extra: Sequence[MemorySource] = (),
) -> list[MemorySource]:
    """The standard sources: facts, messages, decisions, worklogs, summaries, plus ``extra``
    (for example a :class:`engine.GitContextSource` or an :class:`adapters.SubprocessSource`)."""
    sources: list[MemorySource] = [
        FactsSource(store),
        MessagesSource(store),
        DecisionsSource(store),
        WorklogSource(db),
        SummarySource(db),
    ]
    return sources + list(extra)
