"""Feed access tokens: HMAC-SHA256 signed JWTs carrying scopes and an expiry.

A token says which feed topics and sessions its holder may read, whether it may send control
commands, and until when it is valid. :func:`make_token` issues one; :func:`verify_token` checks the
signature and the expiry and returns the :class:`FeedClaims`. Nothing here needs an engine.

Claims (JSON): ``sub`` holder, ``jti`` token id (connection limits count per ``jti``), ``iat`` and
``exp`` (seconds since the epoch), ``scope`` = ``{"topics": [...], "sessions": [...] | "*",
"control": bool}``. Topic scopes name topic kinds: ``sessions``, ``health``, ``metrics``,
``worklog``, ``context`` or ``*`` for all of them.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, final

import jwt

from .._errors import map_exceptions
from ._errors import FEED_ERRORS, FeedTokenError, FeedTokenExpiredError, FeedTokenInvalidError

__all__ = [
    "FeedClaims",
    "FeedScopes",
    "check_secret",
    "make_token",
    "verify_token",
]

TOPIC_KINDS: Final = frozenset({"sessions", "health", "metrics", "worklog", "context"})
MIN_SECRET_BYTES: Final = 32
_ALGORITHM: Final = "HS256"


@final
@dataclass(frozen=True, slots=True)
class FeedScopes:
    """What a token's holder may do.

    Attributes:
        topics: topic kinds it may read (``sessions``, ``health``, ``metrics``, ``worklog``,
            ``context``); ``"*"`` among them means all.
        sessions: session ids whose status, worklog and context it may read; None means all.
        control: whether it may send control commands (e.g. cancel a session).
    """

    topics: frozenset[str] = TOPIC_KINDS
    sessions: frozenset[str] | None = None
    control: bool = False

    @classmethod
    def read_all(cls, *, control: bool = False) -> FeedScopes:
        """Every topic of every session; ``control`` as given."""
        return cls(TOPIC_KINDS, None, control)

    @classmethod
    def of(
        cls,
        topics: Iterable[str] = TOPIC_KINDS,
        sessions: Iterable[str] | None = None,
        *,
        control: bool = False,
    ) -> FeedScopes:
        """Build scopes from any iterables; ``"*"`` in ``topics`` means every kind."""
        kinds = frozenset(topics)
        if "*" in kinds:
            kinds = TOPIC_KINDS
        unknown = kinds - TOPIC_KINDS
        if unknown:
            raise FeedTokenError(f"unknown topic scopes {sorted(unknown)}")
        return cls(kinds, None if sessions is None else frozenset(sessions), control)

    def may_read(self, topic: str) -> bool:
        """Whether the holder may subscribe to feed topic ``topic``."""
        kind, _, session_id = topic.partition(":")
        if kind not in self.topics:
            return False
        if session_id and self.sessions is not None:
            return session_id in self.sessions
        return True

    def may_see_session(self, session_id: str) -> bool:
        """Whether the holder may see anything of session ``session_id``."""
        return self.sessions is None or session_id in self.sessions

    def to_claim(self) -> dict[str, Any]:
        """The ``scope`` claim."""
        return {
            "topics": sorted(self.topics),
            "sessions": "*" if self.sessions is None else sorted(self.sessions),
            "control": self.control,
        }

    @classmethod
    def from_claim(cls, claim: object) -> FeedScopes:
        """Parse a ``scope`` claim; raises :class:`FeedTokenInvalidError` when it is malformed."""
        if not isinstance(claim, dict):
            raise FeedTokenInvalidError("token has no scope object")
        topics = claim.get("topics")
        sessions = claim.get("sessions")
        control = claim.get("control", False)
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise FeedTokenInvalidError("scope.topics must be a list of strings")
        if sessions != "*" and (
            not isinstance(sessions, list) or not all(isinstance(s, str) for s in sessions)
        ):
            raise FeedTokenInvalidError('scope.sessions must be "*" or a list of strings')
        if not isinstance(control, bool):
            raise FeedTokenInvalidError("scope.control must be a boolean")
        try:
            return cls.of(topics, None if sessions == "*" else sessions, control=control)
        except FeedTokenError as exc:
            raise FeedTokenInvalidError(str(exc)) from exc


@final
@dataclass(frozen=True, slots=True)
class FeedClaims:
    """A verified token: who holds it, its id, what it allows and until when."""

    subject: str
    token_id: str
    scopes: FeedScopes
    issued_at: float
    expires_at: float


def check_secret(secret: str | bytes) -> bytes:
    """Return the secret as bytes; raise :class:`FeedTokenError` if it is shorter than 32 bytes."""
    if not isinstance(secret, str | bytes):
        raise FeedTokenError("the feed secret must be str or bytes")
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(key) < MIN_SECRET_BYTES:
        raise FeedTokenError(f"the feed secret must be at least {MIN_SECRET_BYTES} bytes long")
    return key


def make_token(
    secret: str | bytes,
    scopes: FeedScopes,
    ttl: float,
    *,
    subject: str = "feed-client",
    token_id: str | None = None,
    now: float | None = None,
) -> str:
    """Issue a signed token.

    Args:
        secret: the server's signing secret (at least 32 bytes).
        scopes: what the holder may read and do.
        ttl: seconds until it expires (> 0).
        subject: who holds it (shown in logs and statistics).
        token_id: the ``jti`` claim, random when not given; connection limits count per token id.
        now: issue time in seconds since the epoch (default: the current time).

    Returns:
        The token, ``header.payload.signature`` in base64url.
    """
    if not ttl > 0:
        raise FeedTokenError(f"ttl must be > 0 seconds, not {ttl!r}")
    issued = time.time() if now is None else now
    claims = {
        "sub": subject,
        "jti": token_id if token_id is not None else secrets.token_hex(12),
        "iat": int(issued),
        "exp": math.ceil(issued + ttl),
        "scope": scopes.to_claim(),
    }
    return jwt.encode(claims, check_secret(secret), algorithm=_ALGORITHM)


def verify_token(
    secret: str | bytes, token: str, *, now: float | None = None, leeway: float = 0.0
) -> FeedClaims:
    """Check a token's signature and expiry and return its claims.

    Raises:
        FeedTokenExpiredError: the signature is good but the token has expired.
        FeedTokenInvalidError: anything else is wrong with it (forged, malformed, no scope).
    """
    key = check_secret(secret)
    if not isinstance(token, str) or not token or len(token) > 8192:
        raise FeedTokenInvalidError("missing or oversized token")
    with map_exceptions(FEED_ERRORS):
        claims = jwt.decode(
            token,
            key,
            algorithms=[_ALGORITHM],
            options={"require": ["exp", "iat", "sub", "jti"], "verify_exp": False},
        )
    exp = claims["exp"]
    iat = claims["iat"]
    sub = claims["sub"]
    jti = claims["jti"]
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise FeedTokenInvalidError("exp and iat must be numbers")
    if not isinstance(sub, str) or not isinstance(jti, str):
        raise FeedTokenInvalidError("sub and jti must be strings")
    current = time.time() if now is None else now
    if current >= exp + leeway:
        raise FeedTokenExpiredError(f"token {jti} expired")
    return FeedClaims(sub, jti, FeedScopes.from_claim(claims.get("scope")), float(iat), float(exp))
