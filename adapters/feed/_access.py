"""The feed handshake's credentials: its host and origin check (the policy is
:mod:`adapters.http._access`'s) and where its token is.

Every handshake must name an allowed host (DNS rebinding); a handshake with an ``Origin`` header
comes from a browser and must come from a page of the dashboard (``null`` never does); one without
comes from another program, which its token alone admits.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from typing import final

from trio_websocket import WebSocketRequest

from ..http._access import HostAllowlist

__all__ = ["HandshakeAccess", "request_host", "request_token"]


def request_host(request: WebSocketRequest) -> str | None:
    """The ``Host`` header of a handshake (wsproto keeps it out of the other headers; trio-websocket
    shows it only on the request event it wraps). None when it cannot be found, which refuses the
    handshake."""
    host = getattr(getattr(request, "_event", None), "host", None)
    return host if isinstance(host, str) else None


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def request_token(request: WebSocketRequest) -> tuple[str, str | None]:
    """The handshake's path and its token: ``Authorization: Bearer``, else the ``token`` query
    parameter, else None."""
    target = urllib.parse.urlsplit(request.path)
    for name, value in request.headers:
        if name.lower() == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return target.path, credentials.strip()
    tokens = urllib.parse.parse_qs(target.query).get("token")
    return target.path, tokens[0] if tokens else None


@final
class HandshakeAccess:
    """Which hosts the feed answers to and which pages may open it.

    Args:
        hosts: the host allowlist.
    """

    def __init__(self, hosts: HostAllowlist) -> None:
        self.hosts = hosts
        #: Ports of the dashboards whose pages may connect.
        self.page_ports: set[int] = set()

    def refusal(self, request: WebSocketRequest, port: int) -> tuple[int, str, str] | None:
        """Why a handshake on ``port`` is refused (HTTP status, error code, message), or None when
        it may go on to the token check."""
        host = request_host(request)
        if host is None:
            return 400, "missing_host", "a Host header is required"
        if not self.hosts.allows_host(host, port):
            return 403, "forbidden_host", "the feed does not answer to that host name"
        origin = _header(request.headers, b"origin")
        if origin is not None and not self.hosts.allows_origin(origin, self.page_ports):
            return 403, "forbidden_origin", "pages of this origin may not open the feed"
        return None
