"""The embedder settings (``embedder`` and ``embedder_*`` in :mod:`._config`): which ones go
together, and the one embedder they describe.

- ``embedder``: ``wordllama`` (the default: offline, its weights in its wheel, numpy only),
  ``hashing`` (feature hashing: no model at all), ``sentence-transformers`` (the ``minilm`` extra:
  a local model on a CPU torch) or ``openai`` (an OpenAI-compatible endpoint: Ollama, LM Studio,
  vLLM, OpenAI).
- ``embedder_model``: a sentence-transformers name or folder (default ``all-MiniLM-L6-v2``), the
  endpoint's model (``openai``: required); not for ``wordllama`` and ``hashing``.
- ``embedder_url`` (``openai``: required) and ``embedder_api_key_env`` (``openai``: the name of
  the environment variable holding the key; the key itself is never a setting).
- ``embedder_dimensions``: ``openai``: required; ``wordllama``: 64, 128 or 256; ``hashing``:
  8-4096; None: the model's own.
- ``embedder_batch_size`` (texts per call; None: the embedder's), ``embedder_timeout`` (seconds
  per request, ``openai``), ``embedder_min_similarity`` (the least cosine similarity a vector hit
  needs; None: :data:`MIN_SIMILARITY` of the embedder).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import adapters

from .._ports._memory_store import Embedder

if TYPE_CHECKING:
    from ._config import AppConfig

__all__ = [
    "EMBEDDERS",
    "MIN_SIMILARITY",
    "configured_embedder",
    "embedder_problem",
    "min_similarity",
]

#: The embedders ``embedder`` may name.
EMBEDDERS: Final = adapters.EMBEDDER_NAMES
#: The least cosine similarity of a vector hit, by embedder, when ``embedder_min_similarity`` is
#: not set: where unrelated texts of coding sessions mostly fall below (WordLlama's static
#: vectors score lower than a transformer's: a paraphrase may score 0.2).
MIN_SIMILARITY: Final = {
    "wordllama": 0.15,
    "hashing": 0.1,
    "sentence-transformers": 0.25,
    "openai": 0.25,
}


def embedder_problem(config: AppConfig) -> tuple[str, str] | None:
    """``(key, message)`` of the first embedder setting that does not fit the others (None: all
    fit)."""
    kind, dims = config.embedder, config.embedder_dimensions
    if kind == "openai":
        for key in ("embedder_url", "embedder_model", "embedder_dimensions"):
            if getattr(config, key) is None:
                return key, f"{key!r} is required"
    else:
        for key in ("embedder_url", "embedder_api_key_env"):
            if getattr(config, key) is not None:
                return key, f"{key!r} is only for the 'openai' embedder"
    if kind in ("wordllama", "hashing") and config.embedder_model is not None:
        return "embedder_model", "has one model; leave 'embedder_model' out"
    if kind == "wordllama" and dims is not None and dims not in (64, 128, 256):
        return "embedder_dimensions", "'embedder_dimensions' must be 64, 128 or 256"
    if kind == "hashing" and dims is not None and not 8 <= dims <= 4096:
        return "embedder_dimensions", "'embedder_dimensions' must be within 8..4096"
    return None


def min_similarity(config: AppConfig) -> float:
    """The least cosine similarity of a vector hit with this configuration."""
    given = config.embedder_min_similarity
    return MIN_SIMILARITY[config.embedder] if given is None else given


def configured_embedder(config: AppConfig) -> Embedder:
    """The embedder ``config`` names, with its settings (nothing is loaded yet).

    Raises:
        ConfigError: the API key variable named is not set.
        InvalidArgumentError: a setting the embedder refuses.
    """
    return adapters.create_embedder(
        config.embedder,
        model=config.embedder_model,
        url=config.embedder_url,
        api_key=config.embedder_api_key(),
        dimensions=config.embedder_dimensions,
        batch_size=config.embedder_batch_size,
        timeout=config.embedder_timeout,
    )
