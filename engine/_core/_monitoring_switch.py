"""Monitoring switched on and off at run time: the metric history's sampling, the latency
histograms and the alert rules' judging all follow one :class:`MonitoringSwitch`."""

from __future__ import annotations

from typing import final

import trio

from ._latency import Latencies

__all__ = ["MonitoringSwitch"]


@final
class MonitoringSwitch:
    """Whether the daemon's monitoring runs now.

    While it is off, the latency histograms count nothing and the services that sample the
    history and judge the alerts wait for it without waking (they keep what they hold: the
    history its samples and minutes, the alerts their states).

    Args:
        latencies: the histograms it switches (``enabled`` follows it).
        enabled: on at first.
    """

    def __init__(self, latencies: Latencies, *, enabled: bool = True) -> None:
        self._latencies = latencies
        self._on = trio.Event()
        self.set_nowait(enabled)

    def __repr__(self) -> str:
        return f"<MonitoringSwitch {'on' if self.enabled else 'off'}>"

    @property
    def enabled(self) -> bool:
        """Whether monitoring runs now."""
        return self._on.is_set()

    def set_nowait(self, enabled: bool) -> None:
        """Switch monitoring on or off (no change if it already is)."""
        self._latencies.enabled = enabled
        if enabled:
            self._on.set()
        elif self._on.is_set():
            self._on = trio.Event()

    async def wait_enabled(self) -> None:
        """Return once monitoring is on (after a checkpoint, at once when it is).

        Cancellation: the wait ends; nothing changes.
        """
        if self._on.is_set():
            await trio.lowlevel.checkpoint()
        else:
            await self._on.wait()
