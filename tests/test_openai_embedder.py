"""The OpenAI-compatible embedder against a real embeddings endpoint on loopback (hypercorn on trio)
that can also answer 429, 500, garbage or slowly on demand."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

import adapters
import engine

_MODEL = "nomic-embed-text"
_DIMS = 32


@dataclass
class Endpoint:
    """The server's behaviour (``faults``: statuses or ``"slow"``/``"garbage"``/``"shuffled"``
    answered to the next requests, in order) and what it saw."""

    url: str = ""
    faults: list[int | str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    oracle: adapters.HashingEmbedder = field(
        default_factory=lambda: adapters.HashingEmbedder(_DIMS)
    )


async def _app(ep: Endpoint, scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = dict(scope["headers"])
    ep.auth.append(headers.get(b"authorization", b"").decode() or None)
    fault = ep.faults.pop(0) if ep.faults else None
    status, payload = 200, b""
    if scope["path"] != "/v1/embeddings" or scope["method"] != "POST":
        status, payload = 404, b'{"error": "not found"}'
    elif isinstance(fault, int):
        status, payload = fault, b'{"error": "try later"}'
    elif fault == "slow":
        await trio.sleep(30)
    elif fault == "garbage":
        payload = b'{"object": "list"}'
    else:
        request = json.loads(body)
        ep.bodies.append(request)
        vectors = ep.oracle.embed_sync(request["input"])
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        if fault == "shuffled":
            data.reverse()
        payload = json.dumps({"object": "list", "model": request["model"], "data": data}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


@contextlib.asynccontextmanager
async def _endpoint() -> AsyncIterator[Endpoint]:
    ep = Endpoint()
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 0.1
    stop = trio.Event()
    app: Any = functools.partial(_app, ep)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            functools.partial(serve, app, config, shutdown_trigger=stop.wait, mode="asgi")
        )
        ep.url = binds[0].replace("0.0.0.0", "127.0.0.1") + "/v1"
        try:
            yield ep
        finally:
            stop.set()


def _embedder(ep: Endpoint, **kw: Any) -> adapters.OpenAIEmbedder:
    return adapters.OpenAIEmbedder(ep.url, _MODEL, _DIMS, backoff=0.01, **kw)


async def test_vectors_come_back_in_order_in_batches() -> None:
    texts = [f"worklog line {i}: tuned the limiter" for i in range(7)]
    async with _endpoint() as ep:
        ep.faults = ["ok", "shuffled"]
        embedder = _embedder(ep, batch_size=3, api_key="sk-test")
        assert isinstance(embedder, engine.Embedder)
        vectors = await embedder.embed(texts)
    assert vectors == ep.oracle.embed_sync(texts)
    assert [len(b["input"]) for b in ep.bodies] == [3, 3, 1]
    assert {b["model"] for b in ep.bodies} == {_MODEL}
    assert ep.auth == ["Bearer sk-test"] * 3
    assert embedder.requests == 3


async def test_429_and_500_are_retried_then_answered() -> None:
    async with _endpoint() as ep:
        ep.faults = [429, 500, 503]
        embedder = _embedder(ep, retries=3)
        vectors = await embedder.embed(["retry me"])
    assert vectors == ep.oracle.embed_sync(["retry me"])
    assert embedder.requests == 4


async def test_retries_are_bounded() -> None:
    async with _endpoint() as ep:
        ep.faults = [500, 500, 500]
        embedder = _embedder(ep, retries=2)
        with pytest.raises(engine.EmbeddingError, match="answered 500"):
            await embedder.embed(["never"])
    assert embedder.requests == 3


async def test_a_refusal_is_not_retried() -> None:
    async with _endpoint() as ep:
        ep.faults = [401]
        embedder = _embedder(ep)
        with pytest.raises(engine.EmbeddingError, match="answered 401"):
            await embedder.embed(["who am i"])
    assert embedder.requests == 1


async def test_a_slow_answer_times_out_and_is_retried() -> None:
    async with _endpoint() as ep:
        ep.faults = ["slow"]
        embedder = _embedder(ep, timeout=0.2, retries=1)
        vectors = await embedder.embed(["second time lucky"])
    assert vectors == ep.oracle.embed_sync(["second time lucky"])
    assert embedder.requests == 2


async def test_a_wrong_answer_is_a_typed_error() -> None:
    async with _endpoint() as ep:
        ep.faults = ["garbage"]
        with pytest.raises(engine.EmbeddingError, match="no 'data' list"):
            await _embedder(ep).embed(["what"])
        wrong = adapters.OpenAIEmbedder(ep.url, _MODEL, _DIMS + 1, backoff=0.01)
        with pytest.raises(engine.EmbeddingError, match=f"not {_DIMS + 1}"):
            await wrong.embed(["what"])


async def test_a_closed_port_fails_after_the_retries() -> None:
    async with _endpoint() as ep:
        url = ep.url
    embedder = adapters.OpenAIEmbedder(url, _MODEL, _DIMS, retries=1, backoff=0.01)
    with pytest.raises(engine.EmbeddingError, match="ConnectError"):
        await embedder.embed(["anyone?"])
    assert embedder.requests == 2


async def test_cancellation_abandons_the_request() -> None:
    async with _endpoint() as ep:
        ep.faults = ["slow"]
        embedder = _embedder(ep, timeout=60)
        with trio.move_on_after(0.3) as scope:
            await embedder.embed(["stuck"])
        assert scope.cancelled_caught
        assert await embedder.embed(["after"]) == ep.oracle.embed_sync(["after"])


def test_arguments_are_checked() -> None:
    with pytest.raises(engine.InvalidArgumentError):
        adapters.OpenAIEmbedder("ftp://x", _MODEL, _DIMS)
    with pytest.raises(engine.InvalidArgumentError):
        adapters.OpenAIEmbedder("http://x", "", _DIMS)
    with pytest.raises(engine.InvalidArgumentError):
        adapters.OpenAIEmbedder("http://x", _MODEL, 0)
    with pytest.raises(engine.InvalidArgumentError):
        adapters.OpenAIEmbedder("http://x", _MODEL, _DIMS, retries=11)
