"""Bearer tokens for the MCP endpoint (``/mcp``): HMAC-SHA256 signed JWTs with a scope of their own.

They are signed with a key derived from the daemon's secret for this use alone, and name their
audience, so a feed token is never an MCP token and an MCP token is never a feed token. Claims:
``sub`` holder, ``jti`` token id, ``iat`` and ``exp`` (seconds since the epoch), ``aud`` =
``scribe-mcp``, ``scope`` = ``mcp``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass
from typing import Final, final

import jwt

import engine

from ..feed._tokens import check_secret

__all__ = ["MCP_TOKEN_TTL_MAX", "McpClaims", "McpTokenError", "make_mcp_token", "verify_mcp_token"]

_AUDIENCE: Final = "scribe-mcp"
_SCOPE: Final = "mcp"
_ALGORITHM: Final = "HS256"
#: The longest validity a token may have, in seconds (a year).
MCP_TOKEN_TTL_MAX: Final = 366 * 86400.0
_TOKEN_MAX: Final = 4096


class McpTokenError(engine.ScribeError):
    """An MCP bearer token is missing, malformed, forged, of another scope, or expired."""


@final
@dataclass(frozen=True, slots=True)
class McpClaims:
    """A verified MCP token: who holds it, its id and until when it is valid."""

    subject: str
    token_id: str
    expires_at: float


def _key(secret: str | bytes) -> bytes:
    return hmac.new(check_secret(secret), b"scribe mcp bearer token", hashlib.sha256).digest()


def make_mcp_token(
    secret: str | bytes, ttl: float, *, subject: str = "mcp-client", now: float | None = None
) -> str:
    """Issue an MCP bearer token valid for ``ttl`` seconds (at most :data:`MCP_TOKEN_TTL_MAX`).

    Raises:
        McpTokenError: a bad ``ttl`` or subject.
    """
    if not (0 < ttl <= MCP_TOKEN_TTL_MAX):
        raise McpTokenError(f"ttl must be > 0 and <= {MCP_TOKEN_TTL_MAX:g} seconds, not {ttl!r}")
    if not subject or len(subject) > engine.NAME_MAX:
        raise McpTokenError(f"the subject must be 1 to {engine.NAME_MAX} characters")
    issued = time.time() if now is None else now
    claims = {
        "sub": subject,
        "jti": secrets.token_hex(12),
        "iat": int(issued),
        "exp": math.ceil(issued + ttl),
        "aud": _AUDIENCE,
        "scope": _SCOPE,
    }
    return jwt.encode(claims, _key(secret), algorithm=_ALGORITHM)


def verify_mcp_token(secret: str | bytes, token: str, *, now: float | None = None) -> McpClaims:
    """Check an MCP token's signature, audience, scope and expiry.

    Raises:
        McpTokenError: it is not a valid, unexpired MCP token (the message says why).
    """
    if not isinstance(token, str) or not token or len(token) > _TOKEN_MAX:
        raise McpTokenError("missing or oversized token")
    try:
        claims = jwt.decode(
            token,
            _key(secret),
            algorithms=[_ALGORITHM],
            audience=_AUDIENCE,
            options={"require": ["exp", "iat", "sub", "jti", "aud"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise McpTokenError(f"not a valid MCP token: {exc}") from None
    if claims.get("scope") != _SCOPE:
        raise McpTokenError("the token is not for the MCP endpoint")
    exp, sub, jti = claims["exp"], claims["sub"], claims["jti"]
    if not isinstance(exp, int | float) or not isinstance(sub, str) or not isinstance(jti, str):
        raise McpTokenError("malformed token claims")
    if (time.time() if now is None else now) >= exp:
        raise McpTokenError("the token has expired: make a new one with `scribe mcp-token`")
    return McpClaims(sub, jti, float(exp))
