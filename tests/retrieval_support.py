"""Retrieval quality on the labelled set ``data/retrieval_set.json``: load it through a real memory
store, run every query through each ranking alone and through the rehydrator, score recall@5 and
MRR, render the table.

One mechanism for the quality test (``tests/test_retrieval_quality.py``) and the benchmarks that
print the same table (``bench/quality.py``, ``bench/embedders.py``).

What is ranked:

- **a ranking alone** (``fts``, ``trgm``, ``vec``): the store's own searches of messages and of
  decisions, asked for every row (the limit exceeds the set), keeping the rows that ranking found,
  merged across the two tables by that ranking's score (the same function scores both tables);
- **the hybrid**: :func:`engine.rehydrate` over :func:`adapters.default_memory_sources`, with its
  defaults (20 items a source, the 2,000-token budget, near-duplicates removed), as the CLI and the
  daemon call it, except a generous deadline so a loaded machine cannot turn a slow answer into a
  miss. Its order is not the store's fused order: each source's hits keep their per-ranking ranks,
  and the rehydrator fuses them across sources.

A target past rank 20 counts as missed for MRR.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pg_support import server_directory, start_test_server

import adapters
import engine
from engine import MessageRole, NewDecision, NewMessage

SET_PATH: Final = Path(__file__).resolve().parent / "data" / "retrieval_set.json"

#: The message role each kind of item is stored with (decisions go to the decisions table).
ROLE_OF_KIND: Final = {
    "prompt": MessageRole.USER,
    "note": MessageRole.USER,
    "reply": MessageRole.ASSISTANT,
    "worklog": MessageRole.TOOL,
    "commit": MessageRole.TOOL,
}
KINDS: Final = (*ROLE_OF_KIND, "decision")
QUERY_KINDS: Final = ("paraphrase", "keyword")

#: Recall is counted in the first ``CUTOFF`` places; MRR in the first ``MRR_DEPTH``.
CUTOFF: Final = 5
MRR_DEPTH: Final = 20
#: More than the set's rows, so a search returns everything each ranking finds.
_EVERYTHING: Final = 1000
#: Seconds the rehydrator may take (its 0.25 s default is for people waiting, not for scoring).
_DEADLINE: Final = 60.0


@dataclass(frozen=True, slots=True)
class Item:
    """One memory item of the set."""

    id: str
    session: str
    kind: str
    text: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class Query:
    """One labelled query: what it asks and the items it should find."""

    id: str
    kind: str
    text: str
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RetrievalSet:
    """The items and the queries."""

    items: tuple[Item, ...]
    queries: tuple[Query, ...]


def load_set(path: Path = SET_PATH) -> RetrievalSet:
    """The labelled set, checked: unique ids, known kinds, every target an item."""
    data = json.loads(path.read_text())
    items = tuple(
        Item(
            id=i["id"],
            session=i["session"],
            kind=i["kind"],
            text=i["body"] if i["kind"] == "decision" else i["text"],
            title=i.get("title", ""),
        )
        for i in data["items"]
    )
    queries = tuple(
        Query(id=q["id"], kind=q["kind"], text=q["text"], targets=tuple(q["targets"]))
        for q in data["queries"]
    )
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise ValueError("item ids repeat")
    if len({q.id for q in queries}) != len(queries):
        raise ValueError("query ids repeat")
    for item in items:
        if item.kind not in KINDS or (item.kind == "decision") != bool(item.title):
            raise ValueError(f"item {item.id}: bad kind {item.kind!r} or title")
    for query in queries:
        if query.kind not in QUERY_KINDS or not query.targets:
            raise ValueError(f"query {query.id}: bad kind or no target")
        if not set(query.targets) <= set(ids):
            raise ValueError(f"query {query.id}: unknown target")
    return RetrievalSet(items, queries)


# -- how many words a query shares with its targets ------------------------------------------------

_WORD: Final = re.compile(r"[a-z0-9]+")
_STOP: Final = frozenset(
    "a an and are as at be been but by can could did do does don't for from get got had has have "
    "how i if in into is it its it's not of on or our so some that the their them they this to "
    "up was we were what when where which who why will with without you your".split()
)


def content_words(text: str) -> set[str]:
    """The words of ``text`` that carry meaning, cut to their first five letters (a crude stem:
    ``rotated`` and ``rotation`` meet, ``tokens`` and ``token`` too)."""
    return {w[:5] for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def shared_words(query: Query, items: Mapping[str, Item]) -> int:
    """How many content words the query shares with its best-overlapping target."""
    words = content_words(query.text)
    return max(
        len(words & content_words(f"{items[t].title} {items[t].text}")) for t in query.targets
    )


# -- scoring ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scores:
    """Mean recall@5 and MRR, overall and per query kind."""

    recall: Mapping[str, float]
    mrr: Mapping[str, float]


def recall_at(ranked: Sequence[str], targets: Iterable[str], cutoff: int = CUTOFF) -> float:
    """The share of ``targets`` in the first ``cutoff`` places of ``ranked``."""
    wanted = set(targets)
    return len(wanted & set(ranked[:cutoff])) / len(wanted)


def reciprocal_rank(ranked: Sequence[str], targets: Iterable[str], depth: int = MRR_DEPTH) -> float:
    """1 / the place of the first target within the first ``depth`` places (0 if none is there)."""
    wanted = set(targets)
    for place, item in enumerate(ranked[:depth], start=1):
        if item in wanted:
            return 1.0 / place
    return 0.0


def score(queries: Sequence[Query], ranked: Mapping[str, Sequence[str]]) -> Scores:
    """Scores of the ranked lists (item ids best first, per query id)."""
    groups = {"all": list(queries)} | {k: [q for q in queries if q.kind == k] for k in QUERY_KINDS}

    def mean(values: list[float]) -> float:
        return math.fsum(values) / len(values) if values else 0.0

    return Scores(
        recall={
            g: mean([recall_at(ranked[q.id], q.targets) for q in qs]) for g, qs in groups.items()
        },
        mrr={
            g: mean([reciprocal_rank(ranked[q.id], q.targets) for q in qs])
            for g, qs in groups.items()
        },
    )


# -- running the set through the store and the rehydrator -----------------------------------------


async def load_into(store: adapters.PostgresMemoryStore, rset: RetrievalSet) -> dict[str, str]:
    """Store every item (messages in set order per session, decisions one by one); answers the
    set's item id for each citation (``messages:<id>``, ``decisions:<id>``)."""
    cited: dict[str, str] = {}
    sessions = dict.fromkeys(i.session for i in rset.items)
    for session in sessions:
        await store.ensure_session(session, title=session)
        mine = [i for i in rset.items if i.session == session]
        said = [i for i in mine if i.kind != "decision"]
        stored = await store.add_messages(
            session,
            [NewMessage(ROLE_OF_KIND[i.kind], i.text, metadata={"kind": i.kind}) for i in said],
        )
        cited |= {f"messages:{m.id}": i.id for m, i in zip(stored, said, strict=True)}
        for item in mine:
            if item.kind == "decision":
                decision = await store.add_decision(
                    NewDecision(title=item.title, body=item.text, session_id=session)
                )
                cited[f"decisions:{decision.id}"] = item.id
    return cited


async def rank_alone(
    store: adapters.PostgresMemoryStore, cited: Mapping[str, str], query: str
) -> dict[str, list[str]]:
    """For each ranking the store runs, the items it finds for ``query``, best first."""
    messages = await store.search_messages(query, limit=_EVERYTHING)
    decisions = await store.search_decisions(query, limit=_EVERYTHING)
    scored: dict[str, list[tuple[float, str]]] = {}
    for table, hits in (("messages", messages.hits), ("decisions", decisions.hits)):
        for hit in hits:
            item = cited[f"{table}:{hit.item.id}"]
            for ranking, value in hit.scores.items():
                scored.setdefault(ranking, []).append((value, item))
    return {
        name: [i for _, i in sorted(pairs, key=lambda p: (-p[0], p[1]))]
        for name, pairs in scored.items()
    }


async def rank_hybrid(
    db: adapters.Database,
    store: adapters.PostgresMemoryStore,
    cited: Mapping[str, str],
    query: str,
) -> list[str]:
    """The items :func:`engine.rehydrate` packs for ``query`` over the standard sources, in order."""
    bundle = await engine.rehydrate(
        query, sources=adapters.default_memory_sources(db, store), timeout=_DEADLINE
    )
    failed = [s for s in bundle.sources if s.status is not engine.SourceStatus.OK]
    if failed:
        raise RuntimeError(f"a memory source failed: {failed}")
    return [cited[item.evidence.citation] for item in bundle.items]


def default_similarity(embedder: engine.Embedder) -> float:
    """The vector threshold the stack gives ``embedder`` by default (by the family of its model)."""
    from engine.app._embedder_settings import MIN_SIMILARITY

    family = next((f for f in MIN_SIMILARITY if embedder.model.startswith(f)), None)
    return MIN_SIMILARITY.get(family or "", 0.0)


async def evaluate(
    url: str,
    rset: RetrievalSet,
    embedder: engine.Embedder,
    *,
    min_vector_similarity: float | None = None,
    label: str | None = None,
) -> dict[str, Scores]:
    """Load the set into the (empty) database at ``url`` with ``embedder`` and score each ranking
    alone (``fts``, ``trgm``, ``vec <label>``) and the hybrid (``hybrid <label>``); ``label``
    defaults to the embedder's model name, ``min_vector_similarity`` to what the daemon uses for
    that embedder when none is configured."""
    name = embedder.model if label is None else label
    if min_vector_similarity is None:
        min_vector_similarity = default_similarity(embedder)
    async with adapters.open_database(url, pool_size=4) as db:
        store = await adapters.create_memory_store(
            db, embedder=embedder, min_vector_similarity=min_vector_similarity
        )
        if store.vector_status is not engine.VectorStatus.USED:
            raise RuntimeError(f"vector search is not in use ({store.vector_status.value})")
        cited = await load_into(store, rset)
        alone: dict[str, dict[str, list[str]]] = {"fts": {}, "trgm": {}, "vec": {}}
        hybrid: dict[str, list[str]] = {}
        for query in rset.queries:
            ranked = await rank_alone(store, cited, query.text)
            for ranking, table in alone.items():
                table[query.id] = ranked.get(ranking, [])
            hybrid[query.id] = await rank_hybrid(db, store, cited, query.text)
    return {
        "fts": score(rset.queries, alone["fts"]),
        "trgm": score(rset.queries, alone["trgm"]),
        f"vec {name}": score(rset.queries, alone["vec"]),
        f"hybrid {name}": score(rset.queries, hybrid),
    }


def render_table(rows: Mapping[str, Scores], rset: RetrievalSet) -> str:
    """The scores as a Markdown table, one row per ranked system."""
    counts = {k: sum(q.kind == k for q in rset.queries) for k in QUERY_KINDS}
    groups = ("all", *QUERY_KINDS)
    head = ["ranking"] + [f"R@{CUTOFF} {g}" for g in groups] + [f"MRR {g}" for g in groups]
    lines = [
        f"{len(rset.items)} items, {len(rset.queries)} queries "
        f"({', '.join(f'{n} {k}' for k, n in counts.items())}); "
        f"R@{CUTOFF} = recall in the first {CUTOFF}, MRR within the first {MRR_DEPTH}",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    for name, s in rows.items():
        cells = [f"{s.recall[g]:.3f}" for g in groups] + [f"{s.mrr[g]:.3f}" for g in groups]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@contextlib.contextmanager
def scratch_server() -> Iterator[str]:
    """For the benchmarks: the URL of a database on an embedded server started for the block."""
    with server_directory() as directory:
        server = start_test_server(directory)
        try:
            server.create_database("retrieval")
            yield server.url("retrieval")
        finally:
            server.stop("fast")
