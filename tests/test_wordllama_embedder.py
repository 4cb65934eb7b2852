"""The WordLlama embedder: offline, normalised, ordered, batched in worker threads, cancellable."""

from __future__ import annotations

import math

import pytest
import trio

import adapters
import engine
from adapters.embedding._wordllama import MAX_EMBEDDED_CHARS


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_vectors_are_unit_length_of_the_declared_size() -> None:
    embedder = adapters.WordLlamaEmbedder()
    assert isinstance(embedder, engine.Embedder)
    assert embedder.model == "wordllama-l2_supercat-256"
    vectors = await embedder.embed(["fix the flaky parser test", "renamed the session table"])
    assert len(vectors) == 2
    for vector in vectors:
        assert len(vector) == embedder.dimensions == 256
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-5)


async def test_a_paraphrase_is_nearer_than_an_unrelated_text() -> None:
    embedder = adapters.WordLlamaEmbedder()
    query, paraphrase, unrelated = await embedder.embed(
        [
            "why did the login break after the token change?",
            "auth token expiry set to 5 minutes caused sign-outs",
            "the cart total rounds wrong",
        ]
    )
    assert _cosine(query, paraphrase) > _cosine(query, unrelated) + 0.2


async def test_text_without_known_tokens_has_no_direction() -> None:
    embedder = adapters.WordLlamaEmbedder()
    (empty,) = await embedder.embed([""])
    assert empty == [0.0] * 256
    assert await embedder.embed([]) == []


async def test_batches_keep_the_order_and_the_values() -> None:
    texts = [f"commit {i}: tune the limiter for session {i % 7}" for i in range(23)]
    batched = await adapters.WordLlamaEmbedder(batch_size=4).embed(texts)
    whole = await adapters.WordLlamaEmbedder(batch_size=100).embed(texts)
    assert len(batched) == 23
    for a, b in zip(batched, whole, strict=True):
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-6


async def test_a_huge_text_is_cut_before_embedding() -> None:
    embedder = adapters.WordLlamaEmbedder()
    head = "database outage lost nothing " * (MAX_EMBEDDED_CHARS // 29 + 1)
    cut, full = await embedder.embed([head[:MAX_EMBEDDED_CHARS], head + "zebra " * 100_000])
    assert cut == full


async def test_shorter_vectors_are_a_separate_model() -> None:
    embedder = adapters.WordLlamaEmbedder(64)
    (vector,) = await embedder.embed(["the worklog keeps every change"])
    assert len(vector) == 64
    assert embedder.model == "wordllama-l2_supercat-64"


@pytest.mark.parametrize(
    "kwargs",
    [{"dimensions": 100}, {"dimensions": True}, {"batch_size": 0}, {"threads": 17}],
)
def test_bad_arguments_are_typed_errors(kwargs: dict[str, int]) -> None:
    with pytest.raises(engine.InvalidArgumentError):
        adapters.WordLlamaEmbedder(**kwargs)


async def test_a_cancelled_embed_returns_nothing_and_the_embedder_still_works() -> None:
    embedder = adapters.WordLlamaEmbedder(batch_size=1)
    await embedder.load()
    texts = ["retry the push after the hook failed"] * 2000
    with trio.move_on_after(0.01) as scope:
        await embedder.embed(texts)
    assert scope.cancelled_caught
    (vector,) = await embedder.embed(["retry the push"])
    assert len(vector) == 256


@pytest.mark.parametrize("dimensions", [256, 64])
async def test_the_vectors_are_wordllamas_own(dimensions: int) -> None:
    # The embedder sums each text's token vectors itself, a few texts at a time; WordLlama pads a
    # batch and averages under a mask. The directions must be the same.
    import numpy as np

    embedder = adapters.WordLlamaEmbedder(dimensions)
    texts = [
        "",
        "ok",
        "why did the login break after the token change?",
        " ".join(f"word{i}" for i in range(300)),
        *(f"commit {i}: tune the limiter for session {i % 7} and the worklog" for i in range(40)),
    ]
    ours = await embedder.embed_matrix(texts)
    assert ours.dtype == np.float32 and ours.shape == (len(texts), dimensions)
    theirs = np.asarray(embedder._loaded().embed(texts, norm=False), dtype=np.float64)
    norms = np.linalg.norm(theirs, axis=1, keepdims=True)
    theirs = np.where(norms > 0, theirs / np.where(norms > 0, norms, 1.0), 0.0)
    assert np.abs(ours - theirs).max() < 1e-5
    assert not ours[0].any()  # no tokens: no direction
    assert np.asarray(await embedder.embed(texts)).tolist() == ours.astype(np.float64).tolist()
