"""The dashboard's sign-in: one-time tokens for links, exchanged for a session cookie.

The daemon's owner gets a link with a one-time token (``scribe serve`` prints one, ``scribe
dashboard-url`` makes another). Opening it exchanges the token for a cookie (random, HttpOnly,
SameSite=Strict, kept only in the daemon's memory); the token then no longer works, and an unused one
expires after :data:`LOGIN_TOKEN_TTL` seconds. Tokens and cookies are compared in constant time.
At most :data:`MAX_LOGIN_TOKENS` unused tokens and :data:`MAX_COOKIES` cookies are kept (the oldest
go first). A daemon restart signs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from typing import Final, final

__all__ = ["LOGIN_TOKEN_TTL", "MAX_COOKIES", "MAX_LOGIN_TOKENS", "Logins", "parse_cookies"]

#: Seconds an unused one-time token stays valid.
LOGIN_TOKEN_TTL: Final = 600.0
#: Unused one-time tokens kept at most.
MAX_LOGIN_TOKENS: Final = 16
#: Signed-in browsers (cookies) kept at most.
MAX_COOKIES: Final = 64
#: Longest token or cookie value looked at.
MAX_SECRET_LENGTH: Final = 128


def _matches(value: str, known: Iterable[str]) -> str | None:
    """The entry of ``known`` equal to ``value``, comparing every entry in constant time."""
    found = None
    given = value.encode()
    for entry in known:
        if hmac.compare_digest(given, entry.encode()):
            found = entry
    return found


def parse_cookies(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The cookies of a request's ``Cookie`` headers (malformed pairs are skipped)."""
    out: dict[str, str] = {}
    for name, value in headers:
        if name.lower() != b"cookie":
            continue
        for pair in value.decode("latin-1").split(";"):
            key, eq, val = pair.strip().partition("=")
            if eq and key and key not in out:
                out[key] = val.strip().strip('"')
    return out


@final
class Logins:
    """One-time tokens and the cookies they were exchanged for. Time is given by the caller
    (``now``, seconds on a monotonic clock)."""

    def __init__(self, ttl: float = LOGIN_TOKEN_TTL) -> None:
        self.ttl = ttl
        self._tokens: dict[str, float] = {}  # token -> expiry, oldest first
        self._cookies: list[str] = []  # oldest first

    def mint(self, now: float) -> str:
        """A new one-time token, valid until ``now + ttl`` or its first use."""
        self._expire(now)
        while len(self._tokens) >= MAX_LOGIN_TOKENS:
            del self._tokens[next(iter(self._tokens))]
        token = secrets.token_urlsafe(32)
        self._tokens[token] = now + self.ttl
        return token

    def redeem(self, token: str, now: float) -> str | None:
        """Use a one-time token: the new cookie value, or None when it is unknown, used or expired."""
        self._expire(now)
        if len(token) > MAX_SECRET_LENGTH:
            return None
        found = _matches(token, self._tokens)
        if found is None:
            return None
        del self._tokens[found]
        cookie = secrets.token_urlsafe(32)
        self._cookies.append(cookie)
        del self._cookies[:-MAX_COOKIES]
        return cookie

    def signed_in(self, cookie: str | None) -> bool:
        """Is ``cookie`` one this dashboard handed out?"""
        if not cookie or len(cookie) > MAX_SECRET_LENGTH:
            return False
        return _matches(cookie, self._cookies) is not None

    def _expire(self, now: float) -> None:
        for token in [t for t, until in self._tokens.items() if until <= now]:
            del self._tokens[token]
