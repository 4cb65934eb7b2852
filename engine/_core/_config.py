"""The engine's configuration: :class:`EngineConfig`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ._adaptive import AdaptiveSettings
from ._errors import InvalidArgumentError
from ._session_info import SessionLimits

__all__ = ["EngineConfig"]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How an engine runs. Every field has a default (the application resolves its own settings from
    flags, the environment and its configuration file: :func:`engine.app.load_config`).

    Attributes:
        home: where the engine keeps its files (None: nowhere; the application sets its home).
        database_url: a PostgreSQL URL (None: the wiring layer starts the embedded server; the engine
            itself never touches a database).
        gates: capacities of named shared gates (``"git"``, ``"db"``, ...).
        default_gate_capacity: the capacity of a gate not named in ``gates``.
        adaptive_gates: the gates whose capacity adapts to their hold times, and how
            (:class:`engine.AdaptiveCapacity`; the ``gates`` capacity, clamped, is where it starts).
        aging_interval: seconds of waiting worth one priority level on the gates.
        default_limits: limits of sessions that name none.
        max_sessions: the most live sessions (None: no limit).
        shutdown_grace: seconds sessions get to finish when the engine shuts down.
        cleanup_timeout: the most seconds shielded cleanup may take after a hard cancel.
        finished_history: how many finished sessions stay findable by id.
    """

    home: Path | None = None
    database_url: str | None = None
    gates: Mapping[str, int] = field(default_factory=dict)
    default_gate_capacity: int = 4
    adaptive_gates: Mapping[str, AdaptiveSettings] = field(default_factory=dict)
    aging_interval: float | None = 5.0
    default_limits: SessionLimits = field(default_factory=SessionLimits)
    max_sessions: int | None = None
    shutdown_grace: float = 5.0
    cleanup_timeout: float = 5.0
    finished_history: int = 1000

    def __post_init__(self) -> None:
        for what in ("shutdown_grace", "cleanup_timeout"):
            v = getattr(self, what)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0:
                raise InvalidArgumentError(f"{what} must be a number >= 0, not {v!r}")
        for name, cap in self.gates.items():
            if not isinstance(name, str) or not name:
                raise InvalidArgumentError(f"gate names must be non-empty strings, not {name!r}")
            if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
                raise InvalidArgumentError(
                    f"gate {name!r} capacity must be an int >= 1, not {cap!r}"
                )
        for name, settings in self.adaptive_gates.items():
            if not isinstance(name, str) or not name:
                raise InvalidArgumentError(f"gate names must be non-empty strings, not {name!r}")
            if not isinstance(settings, AdaptiveSettings):
                raise InvalidArgumentError(
                    f"gate {name!r} adapts by AdaptiveSettings, not {type(settings).__name__}"
                )
        if self.max_sessions is not None and (
            isinstance(self.max_sessions, bool) or self.max_sessions < 1
        ):
            raise InvalidArgumentError("max_sessions must be >= 1 or None")
