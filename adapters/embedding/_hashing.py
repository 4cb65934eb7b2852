"""An offline embedder: feature hashing of words and character trigrams.

No model download, deterministic, cheap: vectors for texts sharing words and word fragments
point the same way. It is no substitute for a learned model, but it gives vector search a real,
working embedder where none is configured (and in tests).

A call of at most :data:`INLINE_TEXTS` short texts is embedded on the trio thread (it takes
microseconds); anything bigger goes to a worker thread, ``batch_size`` texts per call, at most
``threads`` at once, so a big import never holds the loop.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import Final, final

import trio

from engine import InvalidArgumentError

from ._threaded import embed_in_threads, worker_limiter

__all__ = ["HashingEmbedder"]

_WORD: Final = re.compile(r"\w+")
#: The most texts (of at most :data:`INLINE_CHARS` characters together) embedded on the trio thread.
INLINE_TEXTS: Final = 8
INLINE_CHARS: Final = 4096


@final
class HashingEmbedder:
    """:class:`engine.Embedder` by feature hashing (signed, L2-normalised).

    Args:
        dimensions: Vector length (8-4096).
        batch_size: Texts embedded per worker-thread call (1-4096).
        threads: Worker threads embedding at once (1-16).
    """

    def __init__(self, dimensions: int = 256, *, batch_size: int = 256, threads: int = 1) -> None:
        if isinstance(dimensions, bool) or not 8 <= dimensions <= 4096:
            raise InvalidArgumentError("dimensions must be within 8..4096")
        self._dims = dimensions
        self._batch = batch_size
        self._limiter = worker_limiter(batch_size, threads)

    @property
    def model(self) -> str:
        """``hashing-<dimensions>``."""
        return f"hashing-{self._dims}"

    @property
    def dimensions(self) -> int:
        """Vector length."""
        return self._dims

    def embed_one(self, text: str) -> list[float]:
        """The vector of one text (all zeros for a text without words)."""
        vector = [0.0] * self._dims
        for word in _WORD.findall(text.lower()):
            features = [word] + [f"#{word[i : i + 3]}" for i in range(max(1, len(word) - 2))]
            for weight, feature in ((1.0, features[0]), *((0.5, f) for f in features[1:])):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % self._dims
                sign = 1.0 if digest[4] & 1 else -1.0
                vector[index] += sign * weight
        norm = math.sqrt(sum(x * x for x in vector))
        return [x / norm for x in vector] if norm else vector

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of ``texts`` in order, computed in the calling thread."""
        return [self.embed_one(t) for t in texts]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of ``texts`` in order (a few short texts inline, more in worker threads).

        Cancellation: abandoned between or during batches (a batch in a worker finishes there and
        its vectors are dropped); nothing is returned.
        """
        items = list(texts)
        if len(items) <= INLINE_TEXTS and sum(map(len, items)) <= INLINE_CHARS:
            await trio.lowlevel.checkpoint()
            return self.embed_sync(items)
        return await embed_in_threads(
            self.embed_sync, items, batch=self._batch, limiter=self._limiter
        )
