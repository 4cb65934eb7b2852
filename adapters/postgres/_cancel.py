"""Cancelling a pooled connection's statement on the server: the cancel channel and its retry schedule.

A cancel goes through ``pg_cancel_backend`` on a spare connection kept open for the purpose: a cancel
request of the protocol (``conn.cancel_safe()``, the fallback) makes the server start a process first,
which takes tens of milliseconds on a busy machine. A cancel request that reaches the server before the
statement does is lost, so the caller repeats it (:func:`next_cancel_retry`) until the statement is over.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Final, final

import psycopg

__all__ = ["FAST_CANCEL_PERIOD", "FIRST_CANCEL_RETRY", "CancelChannel", "next_cancel_retry"]

_log = logging.getLogger(__name__)

_CANCEL_REQUEST_TIMEOUT: Final = 2.0
# A cancel request that reaches the server before the statement does is lost, so it is repeated until
# the statement is over: quickly at first (a worker starved of CPU may send its statement late), then
# slowly (each request costs the server a process) for a statement that takes long to notice it.
#: The first wait before a cancel request is repeated.
FIRST_CANCEL_RETRY: Final = 0.002
#: For how long (seconds from the first request) retries stay fast.
FAST_CANCEL_PERIOD: Final = 1.0
_FAST_CANCEL_RETRY: Final = 0.02
_SLOW_CANCEL_RETRY: Final = 0.25


def next_cancel_retry(delay: float, *, fast: bool) -> float:
    """The wait before the next cancel request, after one that waited ``delay``: doubled, capped low
    while ``fast`` (within :data:`FAST_CANCEL_PERIOD` of the first request), higher after."""
    return min(delay * 2, _FAST_CANCEL_RETRY if fast else _SLOW_CANCEL_RETRY)


@final
class CancelChannel:
    """A spare connection that cancels the pool's statements with ``pg_cancel_backend``: one round trip
    on an open connection. When it cannot be used, the statement's own connection sends a protocol cancel
    request (``cancel_safe``). Used from canceller threads; one cancel at a time."""

    def __init__(self, url: str, kwargs: Mapping[str, Any]) -> None:
        self._url = url
        self._kwargs = {
            **kwargs,
            "autocommit": True,
            "application_name": "scribe-cancel",
            "connect_timeout": 2,
        }
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._closed = False

    def open(self) -> None:
        with self._lock:
            try:
                self._conn = psycopg.connect(self._url, **self._kwargs)
            except psycopg.Error as exc:
                _log.debug("cancel channel not opened now (opened when first needed): %s", exc)

    def cancel(self, target: psycopg.Connection[Any]) -> None:
        # Failures need no handling: a server that cannot take a cancel has dropped the statement's
        # connection too, and the worker fails on its own.
        with self._lock:
            if not self._closed:
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = psycopg.connect(self._url, **self._kwargs)
                    self._conn.execute("SELECT pg_cancel_backend(%s)", (target.info.backend_pid,))
                    return
                except psycopg.Error as exc:
                    _log.debug("pg_cancel_backend failed, trying a cancel request: %s", exc)
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = None
        try:
            target.cancel_safe(timeout=_CANCEL_REQUEST_TIMEOUT)
        except (psycopg.Error, OSError) as exc:
            _log.debug("cancel request failed (the statement's connection fails on its own): %s", exc)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
