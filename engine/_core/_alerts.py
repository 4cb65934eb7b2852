"""Alerts: rules' judgements turned into alerts that fire and resolve, without I/O.

A rule judges the present as an :class:`AlertCheck` (active or not, in words, with the value and
the threshold). :class:`AlertBook` keeps each alert's state: an active check becomes a firing
:class:`Alert` once it has stayed active for its ``hold`` seconds; a firing alert resolves once
its check has stayed clear for ``clear_for`` seconds (an alert whose check is no longer given is
clear). :meth:`AlertBook.update` returns what changed, for the caller to publish and post; times
are the caller's (trio's clock, so a MockClock drives them; wall-clock times only label alerts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, final

from ._errors import InvalidArgumentError
from ._health import HealthCheck

__all__ = ["Alert", "AlertBook", "AlertCheck"]

#: The longest alert name and message kept (longer ones are cut).
MAX_NAME: Final = 200
MAX_MESSAGE: Final = 500


@final
@dataclass(frozen=True, slots=True)
class AlertCheck:
    """One rule's judgement now.

    Attributes:
        active: whether the condition holds.
        message: what is wrong, in a few words (shown literally).
        value: the measured value (None: none).
        threshold: the configured threshold it was judged against (None: none).
        hold: seconds the condition must hold before the alert fires.
    """

    active: bool
    message: str
    value: float | None = None
    threshold: float | None = None
    hold: float = 0.0


@final
@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as it changed.

    Attributes:
        name: which alert (``gate_saturated:db``, ``database_down`` ...).
        state: ``firing`` or ``resolved``.
        message: what is (or was) wrong.
        value: the value when it changed.
        threshold: the threshold it was judged against.
        since: when it entered this state (wall-clock seconds).
    """

    name: str
    state: str
    message: str
    value: float | None
    threshold: float | None
    since: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "name": self.name,
            "state": self.state,
            "message": self.message,
            "value": self.value,
            "threshold": self.threshold,
            "since": self.since,
        }


class _State:
    __slots__ = ("active_since", "clear_since", "firing")

    def __init__(self) -> None:
        self.active_since: float | None = None
        self.clear_since: float | None = None
        self.firing: Alert | None = None


@final
class AlertBook:
    """The state of every alert.

    Args:
        clear_for: seconds a firing alert's check must stay clear before it resolves.
        max_alerts: the most alerts tracked (checks of further names are ignored).
    """

    def __init__(self, *, clear_for: float = 5.0, max_alerts: int = 256) -> None:
        if not (math.isfinite(clear_for) and clear_for >= 0):
            raise InvalidArgumentError(f"clear_for must be seconds >= 0, not {clear_for!r}")
        self._clear_for = clear_for
        self._max = max_alerts
        self._states: dict[str, _State] = {}
        self.fired = 0
        self.resolved = 0

    def update(self, now: float, wall: float, checks: Mapping[str, AlertCheck]) -> list[Alert]:
        """Judge ``checks`` at ``now`` (a monotonic clock; ``wall`` the wall clock's time for the
        alerts' ``since``); the alerts that fired or resolved, in name order."""
        changed: list[tuple[str, Alert]] = []
        gone = [name for name in self._states if name not in checks]
        for name, check in (*checks.items(), *((name, None) for name in gone)):
            state = self._states.get(name)
            if state is None:
                if check is None or not check.active or len(self._states) >= self._max:
                    continue
                state = self._states[name] = _State()
            if check is not None and check.active:
                state.clear_since = None
                if state.active_since is None:
                    state.active_since = now
                if state.firing is None and now - state.active_since >= check.hold:
                    state.firing = _alert(name, "firing", check, wall)
                    self.fired += 1
                    changed.append((name, state.firing))
                continue
            state.active_since = None
            if state.firing is None:
                del self._states[name]
                continue
            if state.clear_since is None:
                state.clear_since = now
            if now - state.clear_since >= self._clear_for:
                was = state.firing
                message = check.message if check is not None else was.message
                value = check.value if check is not None else None
                resolved = Alert(
                    name, "resolved", _cut(message, MAX_MESSAGE), value, was.threshold, wall
                )
                changed.append((name, resolved))
                self.resolved += 1
                del self._states[name]
        changed.sort(key=lambda pair: pair[0])  # only what changed is sorted, not every check
        return [alert for _, alert in changed]

    def firing(self) -> list[Alert]:
        """The alerts firing now, in name order."""
        return [s.firing for _, s in sorted(self._states.items()) if s.firing is not None]

    def health(self) -> HealthCheck:
        """A health check: not ok while any alert fires (its problems name them)."""
        firing = self.firing()
        detail = {"firing": [a.as_dict() for a in firing]}
        if not firing:
            return HealthCheck(ok=True, status="ok", detail=detail)
        problem = "; ".join(f"{a.name}: {a.message}" for a in firing[:5])
        return HealthCheck(ok=False, status="firing", problem=problem, detail=detail)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _alert(name: str, state: str, check: AlertCheck, wall: float) -> Alert:
    return Alert(
        _cut(name, MAX_NAME),
        state,
        _cut(check.message, MAX_MESSAGE),
        check.value,
        check.threshold,
        wall,
    )
