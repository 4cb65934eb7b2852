"""Retrieval quality (issue 13): the table of ``tests/test_retrieval_quality.py``, printed.

Run it as ``.venv/bin/python bench/quality.py``. It starts an embedded PostgreSQL in a temporary
directory, loads the labelled set (``tests/data/retrieval_set.json``) once per embedder into an
empty database, and prints recall@5 and MRR for full text alone, trigram alone, each embedder's
vectors alone and the rehydrator's hybrid over each embedder; the default embedder's hybrid is
the one the project ships. The scoring is ``tests/retrieval_support.py``, which the test uses too.

``--min-similarity MODEL=VALUE`` tries another vector threshold for one embedder.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# the project and its test helpers, and not this folder (its mcp.py would hide the mcp package)
sys.path[:] = [
    str(ROOT),
    str(ROOT / "tests"),
    *(p for p in sys.path if Path(p or ".").resolve() != HERE),
]

import trio  # noqa: E402
from pg_support import create_database  # noqa: E402
from retrieval_support import (  # noqa: E402
    RetrievalSet,
    Scores,
    evaluate,
    load_set,
    render_table,
    scratch_server,
)

import adapters  # noqa: E402
import engine  # noqa: E402


async def table_rows(
    url: str,
    rset: RetrievalSet,
    embedders: Sequence[engine.Embedder],
    thresholds: Mapping[str, float],
) -> dict[str, Scores]:
    """Every embedder's rows (full text and trigram once: they do not depend on it)."""
    rows: dict[str, Scores] = {}
    for embedder in embedders:
        scores = await evaluate(
            create_database(url, "quality"),
            rset,
            embedder,
            min_vector_similarity=thresholds.get(embedder.model),
        )
        for name, value in scores.items():
            rows.setdefault(name, value)
    return {
        name: rows[name]
        for name in sorted(
            rows, key=lambda n: (not n.startswith(("fts", "trgm")), n.split()[0] == "hybrid")
        )
    }


def _thresholds(pairs: Sequence[str]) -> dict[str, float]:
    out = {}
    for pair in pairs:
        model, _, value = pair.partition("=")
        out[model] = float(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-similarity", action="append", default=[], metavar="MODEL=VALUE")
    args = parser.parse_args()
    rset = load_set()
    embedders = [adapters.HashingEmbedder(), adapters.WordLlamaEmbedder()]
    with scratch_server() as url:
        rows = trio.run(table_rows, url, rset, embedders, _thresholds(args.min_similarity))
    print(render_table(rows, rset))


if __name__ == "__main__":
    main()
