"""An embedder you program: :class:`engine.Embedder` returning the vectors a test gives it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, final

import trio

from .. import Embedder, InvalidArgumentError

__all__ = ["FakeEmbedder"]


@final
class FakeEmbedder:
    """Returns, for each text, the vector set for it (all zeros, which has no direction, for any
    other text), so a test decides exactly which texts a vector search finds similar.

    The vectors are taken as given, even of the wrong length: that is how a test makes a store
    meet a misbehaving embedder (it must raise :class:`engine.EmbeddingError`).

    Args:
        vectors: text to vector.
        dimensions: the length the embedder claims for every vector.
        model: the model name stored with the vectors.
    """

    def __init__(
        self,
        vectors: Mapping[str, Sequence[float]] | None = None,
        *,
        dimensions: int = 4,
        model: str = "fake-embedder",
    ) -> None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1:
            raise InvalidArgumentError(f"dimensions must be an int >= 1, not {dimensions!r}")
        self._vectors = {text: [float(x) for x in v] for text, v in (vectors or {}).items()}
        self._dimensions = dimensions
        self._model = model
        self.calls: list[tuple[str, ...]] = []

    def __repr__(self) -> str:
        return f"<FakeEmbedder {self._model!r}: {len(self._vectors)} vectors>"

    @property
    def model(self) -> str:
        """The model name."""
        return self._model

    @property
    def dimensions(self) -> int:
        """The length it claims for every vector."""
        return self._dimensions

    def set_vector(self, text: str, vector: Sequence[float]) -> None:
        """Set the vector returned for ``text``."""
        if not all(math.isfinite(x) for x in vector):
            raise InvalidArgumentError("a vector holds finite numbers")
        self._vectors[text] = [float(x) for x in vector]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order (each call is recorded in :attr:`calls`).

        Cancellation: checked once before; nothing is recorded then.
        """
        await trio.lowlevel.checkpoint()
        self.calls.append(tuple(texts))
        zero = [0.0] * self._dimensions
        return [list(self._vectors.get(text, zero)) for text in texts]


if TYPE_CHECKING:

    def _conforms(embedder: FakeEmbedder) -> Embedder:
        return embedder
