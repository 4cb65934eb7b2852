"""What the planner's statistics say of a memory table, for the rankings that cost by its size.

Two rankings cost in proportion to the rows they match rather than to the rows they return:

- **Full text** matches any of the query's words (an OR) and scores every matching row with
  ``ts_rank_cd``. A word found in a tenth of a million rows is 100,000 rows to score for a word that
  says almost nothing about which rows are wanted (its inverse document frequency is low).
  ``ANALYZE`` already counts the most common lexemes of each ``tsvector`` column
  (``pg_stats.most_common_elems`` and their frequencies); the lexemes estimated to match more than
  :data:`MAX_MATCHING_ROWS` rows are *common*, and the ranking's SQL leaves out query words made
  only of common lexemes, unless every word of the query is one (then it keeps them all: a rare
  match beats none). A table smaller than that limit has no common lexeme, so there the ranking is
  exactly the plain OR of the words.
- **Trigram** word similarity (``<%``) takes as candidates the rows that share enough of the
  query's trigrams, and a query of common words shares them with most rows of a big table; each
  candidate's ``word_similarity`` costs about a microsecond per character. Measured: 160 ms at
  40,000 messages, 320 ms at 100,000. Past :data:`TRIGRAM_MAX_ROWS` rows (the planner's estimate,
  ``pg_class.reltuples``) a table's searches leave the trigram ranking out, and full text and
  vectors, which their indexes bound, rank alone.

:class:`TableStatistics` reads both at most once a minute per table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, LiteralString

import trio

from engine import InvalidArgumentError

from ._database import Database

__all__ = ["MAX_MATCHING_ROWS", "TRIGRAM_MAX_ROWS", "TableFacts", "TableStatistics"]

#: A lexeme matching more rows than this (by the statistics' estimate) is left out of queries.
MAX_MATCHING_ROWS: Final = 10_000
#: Past this many rows a table is searched without the trigram ranking.
TRIGRAM_MAX_ROWS: Final = 50_000
_TTL: Final = 60.0


@dataclass(frozen=True, slots=True)
class TableFacts:
    """The planner's view of one table: its estimated rows and its common lexemes."""

    rows: float
    common_lexemes: list[str]
    trigram_fits: bool


class TableStatistics:
    """:class:`TableFacts` of the memory tables, cached per table for a minute.

    Args:
        db: the database.
        max_matching_rows: a lexeme estimated to match more rows than this is common.
        trigram_max_rows: a table estimated to hold more rows than this is searched without the
            trigram ranking (None: always with it).
    """

    def __init__(
        self,
        db: Database,
        *,
        max_matching_rows: int = MAX_MATCHING_ROWS,
        trigram_max_rows: int | None = TRIGRAM_MAX_ROWS,
    ) -> None:
        if max_matching_rows < 1:
            raise InvalidArgumentError("max_matching_rows must be at least 1")
        if trigram_max_rows is not None and trigram_max_rows < 0:
            raise InvalidArgumentError("trigram_max_rows must be at least 0 or None")
        self._db = db
        self._max_matching_rows = max_matching_rows
        self._trigram_max_rows = trigram_max_rows
        self._known: dict[str, tuple[TableFacts, float]] = {}

    async def of(self, table: LiteralString) -> TableFacts:
        """What the statistics say of ``table`` (read from ``pg_class`` and ``pg_stats`` at most
        once a minute; a table never analysed has 0 rows and no common lexeme).

        Cancellation: the catalogue query is cancelled; the cache keeps what it had.
        """
        now = trio.current_time()
        known = self._known.get(table)
        if known is not None and now - known[1] < _TTL:
            return known[0]
        row = await self._db.fetchrow(
            "SELECT s.most_common_elems::text::text[] AS elems,"
            " s.most_common_elem_freqs AS freqs, greatest(c.reltuples, 0) AS n"
            " FROM pg_class c LEFT JOIN pg_stats s ON s.schemaname = current_schema()"
            " AND s.tablename = c.relname AND s.attname = 'tsv'"
            " WHERE c.oid = to_regclass(%s)",
            (table,),
        )
        rows = float(row["n"]) if row is not None else 0.0
        common: list[str] = []
        if row is not None and row["elems"] and row["freqs"]:
            # freqs has three more entries than elems (minimum, maximum, null frequency).
            common = [
                lexeme
                for lexeme, freq in zip(row["elems"], row["freqs"], strict=False)
                if freq * rows > self._max_matching_rows
            ]
        fits = self._trigram_max_rows is None or rows <= self._trigram_max_rows
        facts = TableFacts(rows, common, fits)
        self._known[table] = (facts, now)
        return facts
