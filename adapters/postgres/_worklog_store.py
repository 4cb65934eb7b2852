"""The worklog store over PostgreSQL: :class:`engine.WorklogStore` on tables ``worklog_entries`` and
``summaries``.

An append is one statement (so one transaction): the writer's fence is checked (a row lock on the
sessions, so an adoption waits for it or it sees the adoption), the entries are inserted and the
session's ``last_activity`` moves forward in the same round trip. With ``autocommit``, the statement has committed
when the call returns, so an acknowledged entry survives a crash of this process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, final

import orjson
import trio

import engine
from engine import Summary, SummaryConflictError, WorklogConflictError, WorklogEntry

from ._database import Database
from ._errors import IntegrityError
from ._owner_lease import FENCE, OwnerLease, fence_failure

__all__ = ["PostgresWorklogStore"]

_UNIQUE: Final = "23505"
_FOREIGN_KEY: Final = "23503"

# Without a fence (no lease given), every writer may write: %(me)s is NULL and the CASE is skipped.
_APPEND: Final = (
    """
WITH rows AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r(session_id text, seq bigint, kind text, created_at double precision, payload jsonb)
), fenced AS (
    SELECT s.id FROM sessions s WHERE s.id IN (SELECT session_id FROM rows)
    AND (%(me)s::text IS NULL OR """
    + FENCE
    + """) FOR NO KEY UPDATE
), allowed AS (
    SELECT (SELECT count(*) FROM fenced) = (SELECT count(DISTINCT session_id) FROM rows) AS ok
), ins AS (
    INSERT INTO worklog_entries (session_id, seq, kind, created_at, payload)
    SELECT session_id, seq, kind, to_timestamp(created_at), payload FROM rows
    WHERE (SELECT ok FROM allowed)
    RETURNING session_id, created_at
), touched AS (
    UPDATE sessions AS s SET last_activity = greatest(s.last_activity, m.at)
    FROM (SELECT session_id, max(created_at) AS at FROM ins GROUP BY session_id) AS m
    WHERE s.id = m.session_id RETURNING 1
)
SELECT (SELECT ok FROM allowed) AS ok, (SELECT count(*) FROM touched) AS touched
"""
)

_COLUMNS: Final = "session_id, seq, kind, extract(epoch FROM created_at)::float8 AS ts, payload"


@contextlib.contextmanager
def _integrity_errors(
    session_id: str, conflict: Callable[[IntegrityError], Exception]
) -> Iterator[None]:
    """Map a unique violation to ``conflict(exc)`` and a foreign-key violation (an unregistered
    session) to :class:`engine.StoreNotFoundError`, keeping the driver error as the cause."""
    try:
        yield
    except IntegrityError as exc:
        if exc.sqlstate == _UNIQUE:
            raise conflict(exc) from exc
        if exc.sqlstate == _FOREIGN_KEY:
            raise engine.StoreNotFoundError(session_id) from exc
        raise


def _entry(row: Mapping[str, Any]) -> WorklogEntry:
    return WorklogEntry(row["session_id"], int(row["seq"]), row["kind"], row["ts"], row["payload"])


def _summary(row: Mapping[str, Any]) -> Summary:
    return Summary.from_payload(row["session_id"], int(row["version"]), row["ts"], row["payload"])


@final
class PostgresWorklogStore:
    """Worklog entries and summaries in PostgreSQL (implements :class:`engine.WorklogStore`).

    Args:
        db: an open, migrated database.
        lease: the writing daemon's lease (the session registry's): entries and summaries of a
            session it does not own are refused with :class:`engine.NotOwnerError`, nothing
            written. None: no fence.
    """

    def __init__(self, db: Database, lease: OwnerLease | None = None) -> None:
        self._db = db
        self._lease = lease

    def __repr__(self) -> str:
        return f"<PostgresWorklogStore on {self._db!r}>"

    async def append(self, entries: Sequence[WorklogEntry]) -> None:
        """Store ``entries`` in one transaction and move their sessions' ``last_activity`` forward.

        Raises:
            WorklogConflictError: an entry with the same session and seq is stored already.
            StoreNotFoundError: an entry's session is not registered.
            NotOwnerError: an entry's session is not this daemon's to write (nothing was stored).
            DatabaseError: the database failed (nothing was stored).

        Cancellation: the statement is cancelled on the server; either every entry is stored or none.
        """
        if not entries:
            await trio.lowlevel.checkpoint()
            return
        rows = [
            {
                "session_id": e.session_id,
                "seq": e.seq,
                "kind": e.kind.value,
                "created_at": e.created_at,
                "payload": e.payload,
            }
            for e in entries
        ]
        with _integrity_errors(
            entries[0].session_id,
            lambda exc: WorklogConflictError(
                f"worklog entry already stored: {exc} (two writers for one session?)"
            ),
        ):
            row = await self._db.fetchrow(
                _APPEND, {"rows": orjson.dumps(rows).decode(), **self._fence_params()}
            )
        if row is None or not row["ok"]:
            raise await self._refused(sorted({e.session_id for e in entries}))

    def _fence_params(self) -> dict[str, Any]:
        if self._lease is None:
            return {"me": None, "gen": None, "live": []}
        return self._lease.fence_params()

    async def _refused(self, session_ids: list[str]) -> Exception:
        """Why a fenced write stored nothing: the first session not this daemon's, or not stored."""
        for sid in session_ids:
            refused = (
                None if self._lease is None else await fence_failure(self._db, self._lease, sid)
            )
            if refused is not None:
                return refused
        missing = [
            sid
            for sid in session_ids
            if await self._db.fetchrow("SELECT 1 FROM sessions WHERE id = %s", (sid,)) is None
        ]
        return engine.StoreNotFoundError(missing[0] if missing else session_ids[0])

    async def entries(
        self,
        session_id: str,
        *,
        after_seq: int = 0,
        before_seq: int | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[WorklogEntry]:
        """Entries of the session with ``seq > after_seq`` (and ``seq < before_seq`` when
        given), ascending; with ``newest``, the last ``limit`` of them.

        Cancellation: the query is cancelled on the server.
        """
        limit = engine.check_optional_limit(limit)
        order = "DESC" if newest else "ASC"
        lim = "" if limit is None else f" LIMIT {int(limit)}"
        params: tuple[Any, ...] = (session_id, after_seq)
        below = ""
        if before_seq is not None:
            below, params = "AND seq < %s ", (*params, before_seq)
        sql = (
            f"SELECT {_COLUMNS} FROM worklog_entries WHERE session_id = %s AND seq > %s "
            f"{below}ORDER BY seq {order}{lim}"
        )
        rows = await self._db.fetch(sql.encode(), params)
        out = [_entry(r) for r in rows]
        if newest:
            out.reverse()
        return out

    async def last_seq(self, session_id: str) -> int:
        """The highest stored seq of the session (0: none). Cancellation: as :meth:`entries`."""
        value = await self._db.fetchval(
            "SELECT coalesce(max(seq), 0) FROM worklog_entries WHERE session_id = %s", (session_id,)
        )
        return int(value)

    async def save_summary(self, summary: Summary) -> None:
        """Store a summary version.

        Raises:
            SummaryConflictError: that version is stored already.
            StoreNotFoundError: the session is not registered.
            NotOwnerError: the session is not this daemon's to write.

        Cancellation: the statement is cancelled on the server; the summary is stored or not.
        """
        with _integrity_errors(
            summary.session_id,
            lambda _: SummaryConflictError(
                f"summary {summary.version} of session {summary.session_id!r} is stored already"
            ),
        ):
            count = await self._db.execute(
                "INSERT INTO summaries (session_id, version, created_at, payload) "
                "SELECT s.id, %(version)s, to_timestamp(%(at)s), %(payload)s::jsonb "
                "FROM sessions s WHERE s.id = %(id)s AND (%(me)s::text IS NULL OR "
                + FENCE
                + ") FOR SHARE",
                {
                    "id": summary.session_id,
                    "version": summary.version,
                    "at": summary.created_at,
                    "payload": orjson.dumps(summary.payload()).decode(),
                    **self._fence_params(),
                },
            )
        if count == 0:
            raise await self._refused([summary.session_id])

    async def latest_summary(self, session_id: str) -> Summary | None:
        """The highest stored summary version. Cancellation: as :meth:`entries`."""
        row = await self._db.fetchrow(
            "SELECT session_id, version, extract(epoch FROM created_at)::float8 AS ts, payload "
            "FROM summaries WHERE session_id = %s ORDER BY version DESC LIMIT 1",
            (session_id,),
        )
        return None if row is None else _summary(row)

    async def summaries(self, session_id: str) -> list[Summary]:
        """Every stored summary version, oldest first. Cancellation: as :meth:`entries`."""
        rows = await self._db.fetch(
            "SELECT session_id, version, extract(epoch FROM created_at)::float8 AS ts, payload "
            "FROM summaries WHERE session_id = %s ORDER BY version",
            (session_id,),
        )
        return [_summary(r) for r in rows]
