"""A real HTTP server taking the alert webhook's posts, for the alert tests.

The fixture ``receiver`` gives a :class:`Receiver` answering its first post 503 (so the webhook
retries) and the others 204; ``Receiver(refuse=n)`` refuses the first ``n``.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = ["Receiver", "receiver"]


class Receiver:
    """Posts taken (``posts``: the JSON bodies answered 2xx; ``seen``: every post)."""

    def __init__(self, refuse: int = 1) -> None:
        self.posts: list[dict[str, Any]] = []
        self.seen = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.seen += 1
                refused = receiver.seen <= refuse
                if not refused:
                    receiver.posts.append(json.loads(body))
                self.send_response(503 if refused else 204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook?token=t"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def states(self) -> list[tuple[str, str]]:
        """``(name, state)`` of each alert posted."""
        return [(p["name"], p["state"]) for p in self.posts]

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver refusing its first post."""
    r = Receiver()
    try:
        yield r
    finally:
        r.close()
