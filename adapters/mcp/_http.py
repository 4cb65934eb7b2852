"""The MCP endpoint over streamable HTTP (``/mcp`` on the daemon's dashboard port), for agents in
containers or on other hosts.

Every request must name an allowed host (the dashboard checks ``Host`` against its allowlist,
against DNS rebinding), carry no ``Origin`` or the dashboard's own, and carry a bearer token of the
MCP scope (:mod:`._tokens`; a feed token is refused). A refusal is 400, 403 or 401 with a
``WWW-Authenticate`` header, and a short JSON body saying why.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, final

import orjson
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

import engine

from ..http._access import HostAllowlist
from ._app import McpApp
from ._tokens import McpTokenError, verify_mcp_token

__all__ = ["McpHttp", "open_mcp_http"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

#: The largest request body accepted, in bytes.
MAX_BODY: Final = 4 * 1024 * 1024
#: MCP sessions served at once over HTTP.
MAX_SESSIONS: Final = 256
#: Seconds an HTTP MCP session may stay idle before it is closed.
IDLE_TIMEOUT: Final = 3600.0
_CHALLENGE: Final = b'Bearer realm="scribe-mcp"'


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def _refuse(send: Send, status: int, message: str, *, challenge: bool = False) -> None:
    body = orjson.dumps({"error": "refused", "message": message})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if challenge:
        headers.append((b"www-authenticate", _CHALLENGE + b', error="invalid_token"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@final
class McpHttp(metaclass=engine.NoPublicConstructor):
    """The ASGI application of ``/mcp``. Get one from :func:`open_mcp_http`.

    Attributes:
        refused: requests refused (host, origin or token).
    """

    def __init__(
        self, manager: StreamableHTTPSessionManager, secret: str | bytes, hosts: HostAllowlist,
        port: int,
    ) -> None:  # fmt: skip
        self._manager = manager
        self._secret = secret
        self._hosts = hosts
        self._port = port
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request of the endpoint (after the checks of the module docstring).

        Cancellation: as the SDK's transport: the request's stream ends.
        """
        if scope.get("type") != "http":
            return
        host = _header(scope, b"host")
        origin = _header(scope, b"origin")
        authorization = _header(scope, b"authorization") or ""
        scheme, _, token = authorization.partition(" ")
        if not self._hosts.allows_host(host, self._port):
            self.refused += 1
            await _refuse(send, 403 if host else 400, "this endpoint does not answer to that host")
            return
        if origin is not None and not self._hosts.allows_origin(origin, (self._port,)):
            self.refused += 1
            await _refuse(send, 403, "requests from that origin are refused")
            return
        if scheme.lower() != "bearer" or not token.strip():
            self.refused += 1
            await _refuse(
                send, 401, "a bearer token is required: `scribe mcp-token`", challenge=True
            )
            return
        try:
            verify_mcp_token(self._secret, token.strip())
        except McpTokenError as exc:
            self.refused += 1
            await _refuse(send, 401, str(exc), challenge=True)
            return
        await self._manager.handle_request(scope, receive, send)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def open_mcp_http(
    app: McpApp, *, secret: str | bytes, hosts: HostAllowlist, port: int
) -> AsyncIterator[McpHttp]:
    """Serve ``app`` as the ``/mcp`` endpoint of a server on ``port`` answering to ``hosts``, for the
    duration of the block (mount it on the dashboard with :meth:`~adapters.Dashboard.serve_mcp`).

    Cancellation: leaving the block ends every MCP session served over HTTP.
    """
    manager = StreamableHTTPSessionManager(
        app=app.server,
        json_response=False,
        stateless=False,
        security_settings=None,  # Host and Origin are checked here, as for the dashboard
        session_idle_timeout=IDLE_TIMEOUT,
        max_request_body_size=MAX_BODY,
        max_sessions=MAX_SESSIONS,
    )
    async with manager.run():
        yield McpHttp._create(manager, secret, hosts, port)
