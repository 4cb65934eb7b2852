"""The application's configuration, resolved once: flags > environment > TOML file > defaults.

This is the only module that reads the environment. Every setting has one name; its TOML key is that
name and its environment variable ``SCRIBE_`` plus the name in capitals (``feed_port``:
``SCRIBE_FEED_PORT``). The file is ``$SCRIBE_CONFIG`` (or ``--config PATH``), else
``$XDG_CONFIG_HOME/scribe/config.toml`` (default ``~/.config/scribe/config.toml``); a missing default
file is no error, a missing named one is. The home is ``$SCRIBE_HOME``, else the file's ``home``,
else ``$XDG_DATA_HOME/scribe`` (default ``~/.local/share/scribe``). Where the file and the home are is
decided in :mod:`scribe_cli._home` (standard library only: the hook command finds the daemon with it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

from scribe_cli._home import (
    HomeConfigError,
    choose_home,
    config_file_of,
    read_config_file,
)

from .._core._errors import InvalidArgumentError
from .._core._limits import REHYDRATE_BUDGET_MAX
from .._core._privacy import Privacy
from .._core._secrets import DEFAULT_SECRET_PATTERNS, SecretPattern
from .._ports._memory_records import MemoryRetention
from ._logging import LOG_FORMATS, LOG_LEVELS

__all__ = [
    "AppConfig",
    "ConfigError",
    "add_config_arguments",
    "load_config",
]


class ConfigError(InvalidArgumentError):
    """A setting is unknown or has the wrong type or value.

    Attributes:
        key: the setting.
        source: where it came from: the TOML file's path, the environment variable, or ``"flag"``.
    """

    def __init__(self, key: str, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.key = key
        self.source = source


@dataclass(frozen=True, slots=True)
class AppConfig:
    """How the daemon and the commands run; get one from :func:`load_config` (or build it in tests).

    Attributes:
        home: the home (control socket, lock, feed secret, embedded database).
        database_url: a PostgreSQL URL (None: the embedded server under ``home``).
        pool_size: database connections.
        host: the interface the feed and the dashboard listen on.
        allowed_hosts: host names the feed and the dashboard answer to besides the loopback names
            and ``host`` (a reverse proxy's or a LAN name; any port). Requests naming another host
            are refused, which stops DNS rebinding. In the environment: comma-separated.
        feed: serve the live feed.
        feed_port: the feed's TCP port (0: any free one).
        dashboard: serve the dashboard (needs the feed).
        dashboard_port: the dashboard's TCP port (0: any free one).
        idle_timeout: the default idle timeout of sessions in seconds (None: never; 0 in the file,
            the environment or a flag means never).
        end_on_branch_switch: a branch switch ends a session.
        end_on_push: a completed push ends a session.
        mirror: the worklog mirror path template inside each work tree (None: no mirror).
        summary_interval: the least seconds between two summaries of one session.
        shutdown_grace: seconds sessions get to finish when the engine shuts down.
        health_interval: seconds between two health samples.
        session: the memory commands' default session id.
        log_level: the daemon's log level: ``debug``, ``info``, ``warning`` or ``error``.
        log_format: the daemon's log format: ``text`` (for people) or ``json`` (one object a line).
        redact_secrets: redact likely secrets from everything stored, published or logged
            (``<private>`` text is removed whatever this says).
        redact_disabled: names of default secret patterns not to apply (see
            :data:`engine.DEFAULT_SECRET_PATTERNS`). In the environment: comma-separated.
        redact_patterns: the owner's own secret patterns, name -> regular expression (a TOML
            table; in the environment a JSON object), applied after the default ones.
        hook_recall: an agent's prompt hook answers with a short recall of memory for the prompt.
        briefing_budget: the tokens an agent's session-start briefing may take.
        memory_sweep_interval: seconds between two sweeps of memory by the daemon (expired rows,
            then what the retentions below no longer keep, in batches of ``memory_sweep_batch``).
        memory_retention_days: days a message is kept after it was written (None, the default:
            forever; 0 in the file, the environment or a flag means forever).
        memory_superseded_retention_days: days a superseded decision is kept after it was
            superseded (None or 0: forever; default 90).
        memory_sweep_batch: the most rows one statement of a sweep deletes.
        config_file: the TOML file that was read (None: none).
    """

    home: Path
    database_url: str | None = None
    pool_size: int = 4
    host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()
    feed: bool = True
    feed_port: int = 8766
    dashboard: bool = True
    dashboard_port: int = 8765
    idle_timeout: float | None = 30 * 60.0
    end_on_branch_switch: bool = True
    end_on_push: bool = True
    mirror: str | None = None
    summary_interval: float = 2.0
    shutdown_grace: float = 5.0
    health_interval: float = 2.0
    session: str = "default"
    log_level: str = "info"
    log_format: str = "text"
    redact_secrets: bool = True
    redact_disabled: tuple[str, ...] = ()
    redact_patterns: tuple[tuple[str, str], ...] = ()
    hook_recall: bool = False
    briefing_budget: int = 1500
    memory_sweep_interval: float = 300.0
    memory_retention_days: float | None = None
    memory_superseded_retention_days: float | None = 90.0
    memory_sweep_batch: int = 1000
    config_file: Path | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in _SETTINGS:
                _SETTINGS[f.name].check(f.name, "config", getattr(self, f.name))

    def memory_retention(self) -> MemoryRetention:
        """The one :class:`engine.MemoryRetention` these settings describe."""
        days = (self.memory_retention_days, self.memory_superseded_retention_days)
        messages, superseded = (None if d is None else d * 86400.0 for d in days)
        return MemoryRetention(messages, superseded, self.memory_sweep_batch)

    def privacy(self) -> Privacy:
        """The one :class:`engine.Privacy` these settings describe."""
        return Privacy(
            redact=self.redact_secrets,
            extra_patterns=tuple(SecretPattern.of(n, r) for n, r in self.redact_patterns),
            disabled_patterns=frozenset(self.redact_disabled),
        )


# -- the settings table ------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True, slots=True)
class _Setting:
    kind: str  # "str", "int", "number", "bool", "path", "names", "table"
    valid: Callable[[Any], bool] = lambda v: True
    rule: str = ""
    nullable: bool = False
    zero_is_none: bool = False

    def want(self) -> str:
        base = {
            "str": "a string",
            "int": "an integer",
            "number": "a number",
            "bool": "a boolean",
            "path": "a path",
            "names": "a list of names",
            "table": "a table of names to strings",
        }[self.kind]
        return f"{base} {self.rule}".strip()

    def check(self, key: str, source: str, value: Any) -> None:
        if value is None:
            if self.nullable:
                return
            raise ConfigError(key, source, f"{key!r} must be {self.want()}, not None")
        ok = {
            "str": isinstance(value, str),
            "path": isinstance(value, Path),
            "int": _is_int(value),
            "number": _is_number(value),
            "bool": isinstance(value, bool),
            "names": isinstance(value, tuple) and all(isinstance(v, str) for v in value),
            "table": isinstance(value, tuple)
            and all(
                isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, str) for x in v)
                for v in value
            ),
        }[self.kind]
        if not ok or not self.valid(value):
            raise ConfigError(key, source, f"{key!r} must be {self.want()}, not {value!r}")

    def coerce(self, key: str, source: str, value: Any) -> Any:
        """A value from a flag or the TOML file, checked, in the field's type."""
        if self.kind == "path" and isinstance(value, str):
            value = Path(value).expanduser()
        if self.kind == "number" and _is_int(value):
            value = float(value)
        if self.kind == "names" and isinstance(value, list):
            value = tuple(value)
        if self.kind == "table" and isinstance(value, dict):
            value = tuple(value.items())
        if self.zero_is_none and value == 0 and not isinstance(value, bool):
            return None
        self.check(key, source, value)
        return value

    def parse(self, key: str, source: str, text: str) -> Any:
        """A value from an environment variable."""
        if self.kind == "bool":
            low = text.strip().lower()
            if low not in _BOOLS:
                raise ConfigError(key, source, f"must be true or false, not {text!r}")
            return self.coerce(key, source, _BOOLS[low])
        if self.kind in ("int", "number"):
            try:
                value: Any = int(text) if self.kind == "int" else float(text)
            except ValueError:
                raise ConfigError(key, source, f"must be {self.want()}, not {text!r}") from None
            return self.coerce(key, source, value)
        if self.kind == "names":
            return self.coerce(key, source, [n.strip() for n in text.split(",") if n.strip()])
        if self.kind == "table":
            try:
                table = json.loads(text) if text.strip() else {}
            except ValueError:
                raise ConfigError(key, source, f"must be a JSON object, not {text!r}") from None
            if not isinstance(table, dict):
                raise ConfigError(key, source, f"must be a JSON object, not {text!r}")
            return self.coerce(key, source, table)
        if self.nullable and text == "":
            return None
        return self.coerce(key, source, text)


_BOOLS: Final = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}
def _patterns_compile(table: tuple[tuple[str, str], ...]) -> bool:
    if len(table) > 64 or any(len(r) > 4096 for _, r in table):
        return False
    try:
        Privacy(extra_patterns=tuple(SecretPattern.of(n, r) for n, r in table))
    except InvalidArgumentError:
        return False
    return True


_PATTERN_NAMES: Final = frozenset(p.name for p in DEFAULT_SECRET_PATTERNS)
_PORT = _Setting("int", lambda v: 0 <= v <= 65535, "from 0 to 65535")
_SECONDS = _Setting("number", lambda v: v >= 0, ">= 0")
_DAYS = _Setting("number", lambda v: v > 0, "> 0", nullable=True, zero_is_none=True)

#: Every setting a file, the environment or a flag may give.
_SETTINGS: Final[Mapping[str, _Setting]] = {
    "home": _Setting("path"),
    "database_url": _Setting("str", lambda v: v != "", "(not empty)", nullable=True),
    "pool_size": _Setting("int", lambda v: v >= 1, ">= 1"),
    "host": _Setting("str", lambda v: v != "", "(not empty)"),
    "allowed_hosts": _Setting(
        "names",
        lambda v: len(v) <= 64 and all(0 < len(n) <= 255 and n.strip() == n for n in v),
        "(at most 64, each of 1 to 255 characters)",
    ),
    "feed": _Setting("bool"),
    "feed_port": _PORT,
    "dashboard": _Setting("bool"),
    "dashboard_port": _PORT,
    "idle_timeout": _Setting("number", lambda v: v > 0, "> 0", nullable=True, zero_is_none=True),
    "end_on_branch_switch": _Setting("bool"),
    "end_on_push": _Setting("bool"),
    "mirror": _Setting("str", lambda v: v != "", "(not empty)", nullable=True),
    "summary_interval": _SECONDS,
    "shutdown_grace": _SECONDS,
    "health_interval": _Setting("number", lambda v: v > 0, "> 0"),
    "session": _Setting("str", lambda v: 0 < len(v) <= 200, "of 1 to 200 characters"),
    "log_level": _Setting("str", lambda v: v in LOG_LEVELS, "(" + ", ".join(LOG_LEVELS) + ")"),
    "log_format": _Setting("str", lambda v: v in LOG_FORMATS, "(" + ", ".join(LOG_FORMATS) + ")"),
    "redact_secrets": _Setting("bool"),
    "redact_disabled": _Setting(
        "names",
        lambda v: all(n in _PATTERN_NAMES for n in v),
        "(of default secret patterns: " + ", ".join(sorted(_PATTERN_NAMES)) + ")",
    ),
    "redact_patterns": _Setting(
        "table",
        _patterns_compile,
        "(at most 64; each name lowercase letters, digits and dashes, each regex compiling,"
        " new and at most 4096 characters)",
    ),
    "hook_recall": _Setting("bool"),
    "briefing_budget": _Setting(
        "int", lambda v: 100 <= v <= REHYDRATE_BUDGET_MAX, f"from 100 to {REHYDRATE_BUDGET_MAX}"
    ),
    "memory_sweep_interval": _Setting("number", lambda v: v > 0, "> 0"),
    "memory_retention_days": _DAYS,
    "memory_superseded_retention_days": _DAYS,
    "memory_sweep_batch": _Setting("int", lambda v: 1 <= v <= 100_000, "from 1 to 100000"),
}


def env_name(key: str) -> str:
    """The environment variable of a setting."""
    return "SCRIBE_" + key.upper()


def _read_file(path: Path, required: bool) -> dict[str, Any] | None:
    source = str(path)
    try:
        data = read_config_file(path, required=required)
    except HomeConfigError as exc:
        raise ConfigError(exc.key, exc.source, str(exc).removeprefix(f"{exc.source}: ")) from None
    if data is None:
        return None
    out: dict[str, Any] = {}
    for key, value in data.items():
        setting = _SETTINGS.get(key)
        if setting is None:
            raise ConfigError(
                key, source, f"unknown key {key!r}; known keys: {', '.join(sorted(_SETTINGS))}"
            )
        out[key] = setting.coerce(key, source, value)
    return out


def load_config(
    flags: Mapping[str, Any] | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> AppConfig:
    """Resolve the configuration: ``flags`` > ``environ`` > the TOML file > defaults.

    Args:
        flags: settings given on the command line (a None value means "not given").
        config_file: the TOML file (``--config``; None: ``$SCRIBE_CONFIG`` or the XDG default).
        environ: the environment (None: ``os.environ``).

    Raises:
        ConfigError: an unknown key in the file, a value of the wrong type or out of range (the
            message names the key and where it came from), or a named file that does not exist.
    """
    env = os.environ if environ is None else environ
    name, required = config_file_of(env, config_file)
    path = Path(name)
    from_file = _read_file(path, required)
    values: dict[str, Any] = dict(from_file or {})
    values["home"] = Path(choose_home(env, values.get("home")))
    for key, setting in _SETTINGS.items():
        name = env_name(key)
        if key != "home" and name in env:
            values[key] = setting.parse(key, name, env[name])
    for key, value in (flags or {}).items():
        if value is None:
            continue
        given = _SETTINGS.get(key)
        if given is None:
            raise ConfigError(key, "flag", f"unknown setting {key!r}")
        values[key] = given.coerce(key, f"--{key.replace('_', '-')}", value)
    return AppConfig(**values, config_file=None if from_file is None else path)


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    """``--config PATH`` and ``--home DIR``, which every command takes."""
    p.add_argument(
        "--config",
        metavar="PATH",
        help="the TOML configuration file (default: $SCRIBE_CONFIG or "
        "~/.config/scribe/config.toml)",
    )
    p.add_argument(
        "--home", help="the home directory (default: $SCRIBE_HOME or ~/.local/share/scribe)"
    )
