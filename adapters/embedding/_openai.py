"""An embedder over an OpenAI-compatible embeddings endpoint (OpenAI, Ollama, LM Studio, vLLM).

``POST {url}/embeddings`` with ``{"model": ..., "input": [...]}``; the answer's ``data[i].embedding``
are put back in order by their ``index``. Texts go in batches of ``batch_size``, one request at a
time per batch, each under ``timeout`` seconds. A request answered 429 or 5xx, or that fails to
connect or times out, is tried again after a backoff (``backoff``, doubled each time, or the
server's ``Retry-After`` when shorter than a minute) up to ``retries`` times; any other answer, or
the last failure, raises :class:`engine.EmbeddingError` saying what the endpoint did. The HTTP client
is httpx2 (the one the ``mcp`` SDK brings), which runs on trio through anyio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final, final

import httpx2 as httpx
import trio

from engine import EmbeddingError, InvalidArgumentError

__all__ = ["OpenAIEmbedder"]

#: Characters of one text sent (servers refuse inputs past their context anyway).
MAX_TEXT_CHARS: Final = 16_000
#: The longest ``Retry-After`` honoured, in seconds (a longer one falls back to the backoff).
MAX_RETRY_AFTER: Final = 60.0
_RETRIED: Final = frozenset({408, 409, 429, 500, 502, 503, 504})


@final
class OpenAIEmbedder:
    """:class:`engine.Embedder` over ``POST {url}/embeddings``.

    Args:
        url: the API's base URL (``http://127.0.0.1:11434/v1`` for Ollama).
        model: the model the endpoint serves.
        dimensions: the vector length the model returns (checked on every answer).
        api_key: sent as ``Authorization: Bearer <key>`` (None: no header).
        batch_size: texts per request (1-2048).
        timeout: seconds one request may take (connect, send and read).
        retries: further tries of a request that failed for a reason worth retrying (0-10).
        backoff: seconds before the first retry, doubled for each next one.

    Raises:
        InvalidArgumentError: an argument is out of range.
    """

    def __init__(
        self,
        url: str,
        model: str,
        dimensions: int,
        *,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidArgumentError("url must be an http or https URL")
        if not isinstance(model, str) or not 0 < len(model) <= 500:
            raise InvalidArgumentError("model must be 1-500 characters")
        for name, value, top in (
            ("dimensions", dimensions, 16_000),
            ("batch_size", batch_size, 2048),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise InvalidArgumentError(f"{name} must be an int within 1..{top}")
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
            raise InvalidArgumentError("retries must be an int within 0..10")
        for name, seconds in (("timeout", timeout), ("backoff", backoff)):
            if not isinstance(seconds, int | float) or not 0 <= seconds <= 3600:
                raise InvalidArgumentError(f"{name} must be within 0..3600 seconds")
        self._endpoint = url.rstrip("/") + "/embeddings"
        self._model = model
        self._dims = dimensions
        self._headers = {} if api_key is None else {"Authorization": f"Bearer {api_key}"}
        self._batch = batch_size
        self._timeout = float(timeout)
        self._retries = retries
        self._backoff = float(backoff)
        self.requests = 0
        """Requests sent so far (retries included)."""

    @property
    def model(self) -> str:
        """The endpoint's model name."""
        return self._model

    @property
    def dimensions(self) -> int:
        """Vector length."""
        return self._dims

    @property
    def endpoint(self) -> str:
        """``{url}/embeddings``."""
        return self._endpoint

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors of ``texts`` in order, ``batch_size`` texts per request.

        Raises:
            EmbeddingError: the endpoint refused a request, kept failing past the retries, or
                answered something that is not the vectors asked for.

        Cancellation: the request under way is abandoned (its connection closed); nothing is
        returned.
        """
        items = [t[:MAX_TEXT_CHARS] for t in texts]
        out: list[list[float]] = []
        if not items:
            await trio.lowlevel.checkpoint()
            return out
        timeout = httpx.Timeout(self._timeout)
        async with httpx.AsyncClient(timeout=timeout, headers=self._headers) as client:
            for start in range(0, len(items), self._batch):
                out.extend(await self._batch_call(client, items[start : start + self._batch]))
        return out

    async def _batch_call(self, client: httpx.AsyncClient, batch: list[str]) -> list[list[float]]:
        body = {"model": self._model, "input": batch}
        delay = self._backoff
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            self.requests += 1
            try:
                response = await client.post(self._endpoint, json=body)
            except httpx.TransportError as exc:  # connect, read, timeouts
                if last:
                    raise EmbeddingError(
                        f"embeddings endpoint {self._endpoint} failed: {type(exc).__name__}: {exc}"
                    ) from exc
                await trio.sleep(delay)
                delay *= 2
                continue
            if response.status_code in _RETRIED and not last:
                await trio.sleep(_retry_after(response) or delay)
                delay *= 2
                continue
            if response.status_code != 200:
                raise EmbeddingError(
                    f"embeddings endpoint {self._endpoint} answered {response.status_code}: "
                    f"{response.text[:300]}"
                )
            return self._vectors(response, len(batch))
        raise AssertionError("unreachable")  # pragma: no cover

    def _vectors(self, response: httpx.Response, count: int) -> list[list[float]]:
        try:
            data = response.json()["data"]
            pairs = sorted((int(item["index"]), item["embedding"]) for item in data)
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(
                f"embeddings endpoint {self._endpoint} answered no 'data' list of indexed vectors"
            ) from exc
        if [i for i, _ in pairs] != list(range(count)):
            raise EmbeddingError(
                f"embeddings endpoint {self._endpoint} answered {len(pairs)} vectors for {count} texts"
            )
        return [self._vector(v) for _, v in pairs]

    def _vector(self, raw: Any) -> list[float]:
        if not isinstance(raw, list) or len(raw) != self._dims:
            size = len(raw) if isinstance(raw, list) else type(raw).__name__
            raise EmbeddingError(
                f"embeddings endpoint {self._endpoint} answered a vector of {size}, not {self._dims}"
            )
        try:
            vector = [float(x) for x in raw]
        except (TypeError, ValueError) as exc:
            raise EmbeddingError("the endpoint answered a vector that is not numbers") from exc
        if not all(math.isfinite(x) for x in vector):
            raise EmbeddingError("the endpoint answered a vector with NaN or infinite values")
        return vector


def _retry_after(response: httpx.Response) -> float | None:
    """The server's ``Retry-After`` in seconds, when it gives a short one."""
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_RETRY_AFTER else None
