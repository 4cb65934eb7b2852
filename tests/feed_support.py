"""Shared pieces of the feed tests: an engine with a feed server, tokens, raw sockets."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

import adapters
import engine

SECRET = "feed-test-secret-" + "x" * 32


@dataclass
class Feed:
    eng: engine.Engine
    server: adapters.FeedServer

    def token(
        self,
        *,
        topics: tuple[str, ...] = ("*",),
        sessions: tuple[str, ...] | None = None,
        control: bool = False,
        ttl: float = 600,
        token_id: str | None = None,
    ) -> str:
        scopes = adapters.FeedScopes.of(topics, sessions, control=control)
        return adapters.make_token(SECRET, scopes, ttl, token_id=token_id)

    def url(self, token: str | None = None) -> str:
        return self.server.url + ("" if token is None else f"?token={token}")


@asynccontextmanager
async def open_feed(home: Path, **config: Any) -> AsyncIterator[Feed]:
    async with engine.open_engine(engine.EngineConfig(home=home, shutdown_grace=0.5)) as eng:
        cfg = adapters.FeedServerConfig(**config)
        async with adapters.open_feed_server(eng, secret=SECRET, config=cfg) as server:
            yield Feed(eng, server)


async def wait_until(predicate: Any, *, step: float = 0.005) -> None:
    """Poll a condition (the enclosing test's fail_after bounds the wait)."""
    while not predicate():  # noqa: ASYNC110 - the condition lives in another component
        await trio.sleep(step)


async def handshake_status(
    port: int, path: str, headers: tuple[str, ...] = (), *, host: str | None = None
) -> int:
    """The HTTP status a websocket handshake gets (``host``: the Host header, default the
    server's loopback address and port)."""
    stream, head = await raw_handshake(port, path, headers, host=host)
    await stream.aclose()
    return int(head.split(b" ", 2)[1])


async def raw_handshake(
    port: int, path: str, headers: tuple[str, ...] = (), *, host: str | None = None
) -> tuple[trio.SocketStream, bytes]:
    """Open a websocket by hand and return the stream and the response head; the caller then may
    stay silent (never read, never answer pings), as a stuck client does."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        + "".join(f"{h}\r\n" for h in headers)
        + "\r\n"
    )
    await stream.send_all(request.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await stream.receive_some(4096)
        if not chunk:
            break
        head += chunk
    return stream, head
