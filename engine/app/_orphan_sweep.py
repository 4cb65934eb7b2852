"""The daemon's orphan sweep: every half lease, the sessions of daemons that are gone are marked
orphaned and published, the captures of sessions this daemon no longer owns are released, and the
orphaned sessions its ``adopt_orphans`` policy names are adopted."""

from __future__ import annotations

import logging

import trio

from .._core._errors import ScribeError
from .._core._log_throttle import LogThrottle
from .._scribe._scribe import Scribe

__all__ = ["sweep_orphans_forever"]

_log = logging.getLogger(__name__)


async def sweep_orphans_forever(scribe: Scribe, interval: float, adopt: str = "off") -> None:
    """Sweep every ``interval`` seconds until cancelled, then adopt what the ``adopt`` policy
    (``off``, ``own`` or ``reachable``: :mod:`._cluster_settings`) names; a failed sweep is logged
    (the first, then its recovery) and tried again next time.

    Cancellation: stops at once (a sweep under way is rolled back or completes whole; an adoption
    under way is recorded as failed).
    """
    throttle = LogThrottle(_log)
    while True:
        await trio.sleep(interval)
        try:
            await scribe.sweep_orphans()
            if adopt != "off":
                await scribe.adopt_orphans(own_only=adopt == "own")
        except ScribeError as exc:
            throttle.failed("sweep", "the orphan sweep failed: %s", exc)
        else:
            throttle.recovered("sweep", "the orphan sweep works again")
