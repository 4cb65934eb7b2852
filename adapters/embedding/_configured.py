"""The one factory of the configured embedder: a name and its settings -> an :class:`engine.Embedder`."""

from __future__ import annotations

from typing import Final

from engine import Embedder, InvalidArgumentError

from ._hashing import HashingEmbedder
from ._openai import OpenAIEmbedder
from ._sentence_transformers import DEFAULT_SENTENCE_MODEL, SentenceTransformersEmbedder
from ._wordllama import WordLlamaEmbedder

__all__ = ["EMBEDDER_NAMES", "create_embedder", "describe_embedder"]

#: The names :func:`create_embedder` knows.
EMBEDDER_NAMES: Final = ("wordllama", "hashing", "sentence-transformers", "openai")


def create_embedder(
    name: str,
    *,
    model: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
    dimensions: int | None = None,
    batch_size: int | None = None,
    timeout: float = 30.0,
) -> Embedder:
    """The embedder ``name`` with its settings (no model is loaded and no request is sent yet).

    Args:
        name: one of :data:`EMBEDDER_NAMES`.
        model: the model (``sentence-transformers``: a name or folder; ``openai``: required).
        url: the endpoint's base URL (``openai``: required).
        api_key: the endpoint's key (``openai``; None: none).
        dimensions: the vector length (``openai``: required; None: the model's own).
        batch_size: texts per call (None: the embedder's default).
        timeout: seconds one request may take (``openai``).

    Raises:
        InvalidArgumentError: an unknown name, a missing or out-of-range setting.
    """
    batch = {} if batch_size is None else {"batch_size": batch_size}
    if name == "wordllama":
        return WordLlamaEmbedder(256 if dimensions is None else dimensions, **batch)
    if name == "hashing":
        return HashingEmbedder(256 if dimensions is None else dimensions, **batch)
    if name == "sentence-transformers":
        return SentenceTransformersEmbedder(
            model or DEFAULT_SENTENCE_MODEL, dimensions=dimensions, **batch
        )
    if name == "openai":
        if url is None or model is None or dimensions is None:
            raise InvalidArgumentError("the openai embedder needs a url, a model and dimensions")
        return OpenAIEmbedder(url, model, dimensions, api_key=api_key, timeout=timeout, **batch)
    raise InvalidArgumentError(f"unknown embedder {name!r:.50}; known: {', '.join(EMBEDDER_NAMES)}")


def describe_embedder(embedder: Embedder | None) -> str:
    """``<model> (<dimensions> dims)`` for a banner or a status (``none``: no embedder)."""
    if embedder is None:
        return "none"
    return f"{embedder.model} ({embedder.dimensions} dims)"
