"""The websocket close codes the feed uses, beside the standard ones (see docs/feed.md)."""

from __future__ import annotations

from typing import Final

__all__ = ["CLOSE_BINARY", "CLOSE_POLICY", "CLOSE_SLOW", "CLOSE_TOKEN_EXPIRED"]

#: Close code for a binary frame (the feed speaks JSON text only).
CLOSE_BINARY: Final = 1003
#: Close code for a client that keeps flooding past its rate limit.
CLOSE_POLICY: Final = 1008
#: Close code for a client that did not take a frame within ``send_timeout`` or answer a ping.
CLOSE_SLOW: Final = 4008
#: Close code when the connection's token expires.
CLOSE_TOKEN_EXPIRED: Final = 4001
