"""Posting alerts to a webhook: a bounded queue, one sender, each post retried with backoff.

:class:`Webhook` takes JSON payloads with :meth:`~Webhook.post_nowait` (never blocking; past
``max_queued`` the oldest waiting payload is dropped and counted) and its :meth:`~Webhook.run`
service sends them in order, each as ``POST`` with a JSON body under ``timeout`` seconds, retried
``retries`` times (backoff doubling from ``backoff`` seconds) when the request fails or is answered
5xx or 429; then it is dropped and counted. The client is httpx2, which runs on trio through anyio.
"""

from __future__ import annotations

import logging
import math
import urllib.parse
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NoReturn, final

import httpx2 as httpx
import orjson
import trio

import engine

__all__ = ["Webhook", "WebhookStatistics"]

_log = logging.getLogger(__name__)
_RETRIED: Final = frozenset({429, 500, 502, 503, 504})


@final
@dataclass(frozen=True, slots=True)
class WebhookStatistics:
    """A snapshot of a :class:`Webhook`: payloads ``queued`` now, ``sent``, ``failed`` (given up
    after the retries), ``dropped`` (the queue was full) and ``attempts`` made."""

    queued: int
    sent: int
    failed: int
    dropped: int
    attempts: int


@final
class Webhook:
    """Alerts posted to ``url``.

    Args:
        url: an http or https URL.
        timeout: seconds one request may take.
        retries: further tries of a payload (0-10).
        backoff: seconds before the first retry, doubled for each next (at most 60).
        max_queued: payloads kept waiting (1-10000).

    Raises:
        InvalidArgumentError: an argument is out of range.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 1.0,
        max_queued: int = 100,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise engine.InvalidArgumentError("the webhook URL must be an http or https URL")
        for what, seconds in (("timeout", timeout), ("backoff", backoff)):
            if not (math.isfinite(seconds) and 0 < seconds <= 60):
                raise engine.InvalidArgumentError(f"{what} must be in (0, 60] seconds")
        if not 0 <= retries <= 10 or not 1 <= max_queued <= 10_000:
            raise engine.InvalidArgumentError("retries: 0-10; max_queued: 1-10000")
        self.url = url
        parts = urllib.parse.urlsplit(url)
        # logged without path, query or credentials (they may hold a token)
        self._where = f"{parts.scheme}://{parts.hostname}" + (
            f":{parts.port}" if parts.port else ""
        )
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._queue: deque[bytes] = deque()
        self._max = max_queued
        self._ready = trio.Event()
        self._sent = self._failed = self._dropped = self._attempts = 0

    def post_nowait(self, payload: Mapping[str, Any]) -> None:
        """Queue ``payload`` (JSON-ready) to be posted; never blocks."""
        if len(self._queue) >= self._max:
            self._queue.popleft()
            self._dropped += 1
        self._queue.append(orjson.dumps(payload))
        self._ready.set()

    def statistics(self) -> WebhookStatistics:
        """A snapshot of its counters."""
        return WebhookStatistics(
            len(self._queue), self._sent, self._failed, self._dropped, self._attempts
        )

    async def run(self) -> NoReturn:
        """Send what is queued, in order, forever (a service).

        Cancellation: the request in progress is abandoned; its payload and the queue's are
        not sent.
        """
        headers = {"content-type": "application/json", "user-agent": "scribe"}
        async with httpx.AsyncClient(timeout=self._timeout, headers=headers) as client:
            while True:
                while not self._queue:
                    self._ready = trio.Event()
                    await self._ready.wait()
                body = self._queue.popleft()
                if await self._deliver(client, body):
                    self._sent += 1
                else:
                    self._failed += 1

    async def _deliver(self, client: httpx.AsyncClient, body: bytes) -> bool:
        delay = self._backoff
        for attempt in range(self._retries + 1):
            self._attempts += 1
            problem: str
            try:
                with trio.fail_after(self._timeout * 2):  # a bound over httpx's own timeouts
                    response = await client.post(self.url, content=body)
            except (httpx.HTTPError, trio.TooSlowError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if 200 <= response.status_code < 300:
                    return True
                problem = f"answered {response.status_code}"
                if response.status_code not in _RETRIED:
                    _log.warning("the alert webhook %s %s: not retried", self._where, problem)
                    return False
            if attempt < self._retries:
                await trio.sleep(delay)
                delay = min(delay * 2, 60.0)
        _log.warning("the alert webhook %s failed %d times: %s", self._where, attempt + 1, problem)
        return False
