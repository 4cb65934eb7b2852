"""What the planner's statistics say of a memory table, for the rankings that cost by its size.

Two rankings cost in proportion to the rows they match rather than to the rows they return:

- **Full text** matches any of the query's words (an OR) and scores every matching row with
  ``ts_rank_cd``; PostgreSQL has no top-k over a GIN index, so a query word found in a tenth of a
  million rows is 100,000 rows to fetch and score, for a word that says little about which rows
  are wanted (its inverse document frequency is low). ``ANALYZE`` already counts the most common
  lexemes of each ``tsvector`` column (``pg_stats.most_common_elems`` and their frequencies; a
  lexeme not listed is rarer than the rarest listed). :meth:`TableFacts.full_text_query` keeps the
  query's words from the rarest up while the rows they are estimated to match stay within
  :data:`MATCH_BUDGET`, and always the rarest word (a rare match beats none); when even that one
  matches more than the budget, rows must hold all the words (far fewer rows do), and when even
  those are estimated at more than twice the budget the full-text ranking is left out (the query's
  words are all common; vectors still rank). On a table
  smaller than the budget every word is kept, so there the ranking is exactly the plain OR of the
  words.
- **Trigram** word similarity (``<%``) takes as candidates the rows that share enough of the
  query's trigrams, and a query of common words shares them with most rows of a big table; each
  candidate's ``word_similarity`` costs about a microsecond per character. Measured: 160 ms at
  40,000 messages, 320 ms at 100,000. Past :data:`TRIGRAM_MAX_ROWS` rows (the planner's estimate,
  ``pg_class.reltuples``) a table's searches leave the trigram ranking out, and full text and
  vectors, which their indexes bound, rank alone.

:class:`TableStatistics` reads both at most once a minute per table, and keeps the lexemes of the
words it has seen (PostgreSQL's stemmer is the one that counts, so it is asked, once a word).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, LiteralString

import trio

from engine import InvalidArgumentError

from ._database import Database

__all__ = [
    "ALL_WORDS_FACTOR",
    "MATCH_BUDGET",
    "TRIGRAM_MAX_ROWS",
    "TableFacts",
    "TableStatistics",
]

#: The rows a full-text query is let match, by the statistics' estimate.
MATCH_BUDGET: Final = 2_000
#: Rows holding every word of a query are searched for while estimated within this many budgets.
ALL_WORDS_FACTOR: Final = 2
#: Past this many rows a table is searched without the trigram ranking.
TRIGRAM_MAX_ROWS: Final = 50_000
_TTL: Final = 60.0
_MAX_WORDS_KEPT: Final = 20_000


@dataclass(frozen=True, slots=True)
class TableFacts:
    """The planner's view of one table.

    Attributes:
        rows: the estimated rows (0 for a table never analysed).
        frequencies: the share of rows holding each of the most common lexemes.
        rarest: the frequency below which every lexeme not in ``frequencies`` lies.
        trigram_fits: whether the table is small enough for the trigram ranking.
        match_budget: the rows a full-text query is let match.
    """

    rows: float
    frequencies: Mapping[str, float] = field(default_factory=dict)
    rarest: float = 0.0
    trigram_fits: bool = True
    match_budget: int = MATCH_BUDGET

    def matches(self, lexemes: Sequence[str]) -> float:
        """The rows a word made of ``lexemes`` is estimated to match (a word of several lexemes
        is a phrase: no more rows than its rarest lexeme)."""
        if not lexemes:
            return 0.0
        return self.rows * min(self.frequencies.get(x, self.rarest) for x in lexemes)

    def selective_words(
        self, words: Sequence[str], lexemes: Mapping[str, Sequence[str]]
    ) -> list[str]:
        """The words to search for, in their order: from the rarest up while the estimated rows
        they match stay within the budget, and the rarest word always; words without a lexeme
        (stop words) are left out, and all of them when no word has one."""
        known = [w for w in words if lexemes.get(w)]
        if not known:
            return list(words)
        cost = {w: self.matches(lexemes[w]) for w in known}
        kept: set[str] = set()
        total = 0.0
        for word in sorted(dict.fromkeys(known), key=lambda w: cost[w]):
            if kept and total + cost[word] > self.match_budget:
                break
            kept.add(word)
            total += cost[word]
        return [w for w in known if w in kept]

    def full_text_query(self, words: Sequence[str], lexemes: Mapping[str, Sequence[str]]) -> str:
        """The ``websearch_to_tsquery`` text to search for: any of the :meth:`selective_words`;
        or, when even the rarest word alone is estimated to match more rows than the budget and
        the query has several words, all of them (rows holding every word are far fewer); or
        nothing (the full-text ranking is left out) when even the rows holding all of them are
        estimated at more than :data:`ALL_WORDS_FACTOR` times the budget: such words say little
        about which rows are wanted, and ranking them costs a read of every matching row
        (measured at a million messages: two common words in 12,000 rows, 78 ms)."""
        kept = self.selective_words(words, lexemes)
        known = list(dict.fromkeys(w for w in words if lexemes.get(w)))
        if len(known) > 1 and sum(self.matches(lexemes[w]) for w in kept) > self.match_budget:
            every = self.rows
            for w in known:  # as the planner estimates an AND: as if the words were independent
                every *= self.matches(lexemes[w]) / self.rows if self.rows else 0.0
            if every > ALL_WORDS_FACTOR * self.match_budget:
                return ""
            return " ".join(f'"{w}"' for w in known)  # quoted: a word "or" is no operator
        return " or ".join(kept)


class TableStatistics:
    """:class:`TableFacts` of the memory tables, cached per table for a minute.

    Args:
        db: the database.
        match_budget: the rows a full-text query is let match (by estimate).
        trigram_max_rows: a table estimated to hold more rows than this is searched without the
            trigram ranking (None: always with it).
    """

    def __init__(
        self,
        db: Database,
        *,
        match_budget: int = MATCH_BUDGET,
        trigram_max_rows: int | None = TRIGRAM_MAX_ROWS,
    ) -> None:
        if match_budget < 1:
            raise InvalidArgumentError("match_budget must be at least 1")
        if trigram_max_rows is not None and trigram_max_rows < 0:
            raise InvalidArgumentError("trigram_max_rows must be at least 0 or None")
        self._db = db
        self._match_budget = match_budget
        self._trigram_max_rows = trigram_max_rows
        self._known: dict[str, tuple[TableFacts, float]] = {}
        self._lexemes: dict[str, tuple[str, ...]] = {}

    @property
    def trigram_max_rows(self) -> int | None:
        """Past this many rows a table is searched without the trigram ranking (None: never)."""
        return self._trigram_max_rows

    async def of(self, table: LiteralString) -> TableFacts:
        """What the statistics say of ``table`` (read from ``pg_class`` and ``pg_stats`` at most
        once a minute).

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
        frequencies: dict[str, float] = {}
        rarest = 0.0  # no statistics (yet): nothing is known to be common, every word is kept
        if row is not None and row["elems"] and row["freqs"]:
            elems, freqs = row["elems"], row["freqs"]
            # freqs ends with three more entries: the minimum, maximum and null frequency.
            frequencies = dict(zip(elems, freqs[: len(elems)], strict=True))
            rarest = float(freqs[len(elems)])
        fits = self._trigram_max_rows is None or rows <= self._trigram_max_rows
        facts = TableFacts(rows, frequencies, rarest, fits, self._match_budget)
        self._known[table] = (facts, now)
        return facts

    async def lexemes(self, words: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """The English lexemes of each of ``words`` (as ``to_tsvector`` makes them; none for a
        stop word), asked of the server once a word and kept (a bounded number of words).

        Cancellation: the query is cancelled; nothing new is kept.
        """
        missing = [w for w in dict.fromkeys(words) if w not in self._lexemes]
        if missing:
            rows = await self._db.fetch(
                "SELECT w, tsvector_to_array(to_tsvector('english', w)) AS l"
                " FROM unnest(%(words)s::text[]) AS w",
                {"words": missing},
            )
            if len(self._lexemes) + len(rows) > _MAX_WORDS_KEPT:
                self._lexemes.clear()
            for r in rows:
                self._lexemes[r["w"]] = tuple(r["l"])
        return {w: self._lexemes.get(w, ()) for w in words}
