"""The feed family's errors and its one error table: websocket, socket, JSON and JWT errors translated.

The client and the token code raise these; the server answers a client's trouble on the wire instead
(close codes and error replies) and raises none of them.
"""

from __future__ import annotations

from typing import Final

import jwt
import orjson
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected

from engine import ScribeError

from .._errors import ErrorTable

__all__ = [
    "FEED_ERRORS",
    "FeedClientError",
    "FeedConnectionError",
    "FeedTokenError",
    "FeedTokenExpiredError",
    "FeedTokenInvalidError",
]


class FeedClientError(ScribeError):
    """The feed client was used wrongly or got a message it cannot read."""


class FeedConnectionError(FeedClientError):
    """The connection could not be opened or was closed by the server.

    Attributes:
        status: the HTTP status of a refused handshake (401, 403, 429 ...), else None.
        code: the websocket close code when the server closed the connection, else None.
    """

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class FeedTokenError(ScribeError):
    """A feed token is missing, malformed, forged or expired, or cannot be made."""


class FeedTokenInvalidError(FeedTokenError):
    """The token is malformed, its signature does not match, or its claims are not feed claims."""


class FeedTokenExpiredError(FeedTokenError):
    """The token was valid but its expiry has passed."""


def _closed(exc: ConnectionClosed) -> FeedConnectionError:
    reason = exc.reason
    code = reason.code if reason is not None else None
    text = reason.reason if reason is not None else None
    return FeedConnectionError(f"feed connection closed ({code}: {text})", code=code)


def _refused(exc: ConnectionRejected) -> FeedConnectionError:
    body = (exc.body or b"").decode(errors="replace")[:200]
    status = exc.status_code
    return FeedConnectionError(f"feed handshake refused ({status}): {body}", status=status)


def _too_slow(exc: trio.TooSlowError) -> FeedConnectionError:
    return FeedConnectionError("no handshake from the feed server in time")


def _unreachable(exc: OSError) -> FeedConnectionError:
    return FeedConnectionError(f"cannot connect to the feed server: {exc}")


def _not_json(exc: orjson.JSONDecodeError) -> FeedClientError:
    return FeedClientError("the server sent a frame that is not JSON")


def _bad_token(exc: jwt.PyJWTError) -> FeedTokenInvalidError:
    return FeedTokenInvalidError(f"invalid token: {exc}")


#: Foreign error -> the feed's typed error (first match wins).
FEED_ERRORS: Final[ErrorTable] = {
    ConnectionClosed: _closed,
    ConnectionRejected: _refused,
    trio.TooSlowError: _too_slow,
    OSError: _unreachable,
    orjson.JSONDecodeError: _not_json,
    jwt.PyJWTError: _bad_token,
}
