"""Who may talk to the dashboard and the feed: the ``Host`` allowlist and the browser ``Origin`` check.

A web page on another site can make a browser send requests to a loopback port, and DNS rebinding can
even make them look same-origin to the browser (``http://evil.example:8765`` resolving to 127.0.0.1),
but the browser then sends ``Host: evil.example:8765``. So every HTTP request and every feed handshake
must name an allowed host: the loopback names ``127.0.0.1``, ``localhost`` and ``[::1]`` with the
server's own port, the address the server is bound to (unless it is a wildcard) with that port, and
the names configured (``allowed_hosts``, any port, for a reverse proxy or a LAN name).

A browser always sends ``Origin`` on a websocket handshake; a page may open the feed only when that
origin is the dashboard's own (an allowed host with the dashboard's port, over http or https).
``null`` (sandboxed frames, ``file:`` pages) is never allowed. Clients that are not browsers send no
``Origin`` and are judged by their token alone.

Pure functions and one frozen value; no I/O.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, final

__all__ = ["LOOPBACK_NAMES", "HostAllowlist", "host_name", "url_host"]

#: The names of the local machine a browser on it may use.
LOOPBACK_NAMES: Final = frozenset({"127.0.0.1", "localhost", "[::1]"})
_WILDCARDS: Final = frozenset({"", "0.0.0.0", "[::]"})
#: Longest ``Host`` or ``Origin`` value looked at.
_MAX_HEADER: Final = 512


def host_name(address: str) -> str:
    """The form a bind address takes in a ``Host`` header (IPv6 literals in brackets, lower case)."""
    name = address.strip().lower()
    if ":" in name and not name.startswith("["):
        name = f"[{name}]"
    return name


def url_host(address: str) -> str:
    """The host part of a URL for a server bound to ``address``: a wildcard becomes the loopback
    address (which the allowlist accepts), an IPv6 literal gets its brackets."""
    name = host_name(address)
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(name, name)


def _split_host(value: str, default_port: int) -> tuple[str, int] | None:
    """``(name, port)`` of a ``Host`` value (``name``, ``name:port``, ``[v6]:port``), or None."""
    if not value or len(value) > _MAX_HEADER or value != value.strip():
        return None
    value = value.lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[: end + 1], value[end + 1 :]
    elif value.count(":") > 1:
        return None
    else:
        name, colon, port = value.partition(":")
        rest = colon + port
    if not rest:
        return name, default_port
    if not rest.startswith(":") or not rest[1:].isdigit() or len(rest) > 6:
        return None
    port_number = int(rest[1:])
    return (name, port_number) if 0 < port_number < 65536 else None


@final
@dataclass(frozen=True, slots=True)
class HostAllowlist:
    """The host names a server answers to.

    Attributes:
        bound: the bind address in ``Host`` form (allowed with the server's port unless a wildcard).
        names: configured extra names, lower case, allowed with any port.
    """

    bound: str = "127.0.0.1"
    names: frozenset[str] = frozenset()

    @classmethod
    def of(cls, bound: str, names: Iterable[str] = ()) -> HostAllowlist:
        """The allowlist of a server bound to ``bound`` with these configured extra names."""
        return cls(host_name(bound), frozenset(host_name(n) for n in names if n.strip()))

    def allows_host(self, value: str | None, port: int) -> bool:
        """Is ``value`` (a ``Host`` header, None when missing) a name of a server on ``port``?"""
        if value is None:
            return False
        parsed = _split_host(value, 80)
        if parsed is None:
            return False
        name, given = parsed
        if name in self.names:
            return True
        local = name in LOOPBACK_NAMES or (name == self.bound and name not in _WILDCARDS)
        return local and given == port

    def allows_origin(self, value: str, ports: Iterable[int]) -> bool:
        """May a page of origin ``value`` (an ``Origin`` header) use a server whose pages are served
        on ``ports``? ``null`` and anything but http(s) never may."""
        if len(value) > _MAX_HEADER:
            return False
        try:
            parts = urllib.parse.urlsplit(value)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.path or parts.query or parts.fragment:
            return False
        if "@" in parts.netloc:
            return False
        default = 443 if parts.scheme == "https" else 80
        parsed = _split_host(parts.netloc, default)
        if parsed is None:
            return False
        netloc = f"{parsed[0]}:{parsed[1]}"
        return any(self.allows_host(netloc, port) for port in ports)
