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
import os
from collections.abc import Mapping
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
from . import _summarizer_settings as _summarizing
from ._cluster_settings import CLUSTER_SETTINGS
from ._config_setting import ConfigError, Setting, is_env_name, is_http_url
from ._embedder_settings import EMBEDDERS, embedder_problem
from ._logging import LOG_FORMATS, LOG_LEVELS
from ._monitor_settings import MONITOR_SETTINGS, MonitorSettings

__all__ = [
    "AppConfig",
    "add_config_arguments",
    "load_config",
]


@dataclass(frozen=True, slots=True)
class AppConfig(MonitorSettings):
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
        summarizer: ``heuristic`` (default) or ``dspy`` (a language model); it and the settings
            ``summarizer_model``, ``summarizer_url``, ``summarizer_api_key_env``,
            ``summarizer_calls_per_hour``, ``summarizer_timeout``: :mod:`._summarizer_settings`.
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
        embedder: what turns memory into vectors: ``wordllama`` (default), ``hashing``,
            ``sentence-transformers`` or ``openai``; it and ``embedder_model``, ``embedder_url``,
            ``embedder_api_key_env`` (the name of the variable holding the key, never the key),
            ``embedder_dimensions``, ``embedder_batch_size``, ``embedder_timeout`` and
            ``embedder_min_similarity`` are described in :mod:`._embedder_settings`.
        memory_sweep_interval: seconds between two sweeps of memory by the daemon (expired rows,
            then what the retentions below no longer keep, in batches of ``memory_sweep_batch``).
        memory_retention_days: days a message is kept after it was written (None, the default:
            forever; 0 in the file, the environment or a flag means forever).
        memory_superseded_retention_days: days a superseded decision is kept after it was
            superseded (None or 0: forever; default 90).
        memory_sweep_batch: the most rows one statement of a sweep deletes.
        monitoring, metric_retention_days, alert_*: :mod:`._monitor_settings`.
        daemon_name, owner_lease, adopt_orphans: daemons sharing one database,
            :mod:`._cluster_settings`.
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
    summarizer: str = "heuristic"
    summarizer_model: str | None = None
    summarizer_url: str | None = None
    summarizer_api_key_env: str | None = None
    summarizer_calls_per_hour: int = 60
    summarizer_timeout: float = 30.0
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
    embedder: str = "wordllama"
    embedder_model: str | None = None
    embedder_url: str | None = None
    embedder_api_key_env: str | None = None
    embedder_dimensions: int | None = None
    embedder_batch_size: int | None = None
    embedder_timeout: float = 30.0
    embedder_min_similarity: float | None = None
    memory_sweep_interval: float = 300.0
    memory_retention_days: float | None = None
    memory_superseded_retention_days: float | None = 90.0
    memory_sweep_batch: int = 1000
    daemon_name: str = ""
    owner_lease: float = 10.0
    adopt_orphans: str = "own"
    config_file: Path | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name in _SETTINGS:
                _SETTINGS[f.name].check(f.name, "config", getattr(self, f.name))
        if (problem := _summarizing.summarizer_problem(self)) is not None:
            raise ConfigError(problem[0], "config", problem[1])
        problem = embedder_problem(self)
        if problem is not None:
            raise ConfigError(problem[0], "config", f"embedder {self.embedder!r}: {problem[1]}")

    def summarizer_api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The model's API key, read now from the variable ``summarizer_api_key_env`` names (None:
        no variable named); ``environ`` defaults to ``os.environ``. Raises ConfigError: not set."""
        return self._api_key("summarizer_api_key_env", environ)

    def embedder_api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The endpoint's API key, read now from the variable ``embedder_api_key_env`` names (None:
        no variable named); ``environ`` defaults to ``os.environ``. Raises ConfigError: not set."""
        return self._api_key("embedder_api_key_env", environ)

    def _api_key(self, field: str, environ: Mapping[str, str] | None) -> str | None:
        name = getattr(self, field)
        if name is None:
            return None
        key = (os.environ if environ is None else environ).get(name, "")
        if not key:
            raise ConfigError(field, name, f"the API key variable {name} is not set")
        return key

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


def _patterns_compile(table: tuple[tuple[str, str], ...]) -> bool:
    if len(table) > 64 or any(len(r) > 4096 for _, r in table):
        return False
    try:
        Privacy(extra_patterns=tuple(SecretPattern.of(n, r) for n, r in table))
    except InvalidArgumentError:
        return False
    return True


_PATTERN_NAMES: Final = frozenset(p.name for p in DEFAULT_SECRET_PATTERNS)
_PORT = Setting("int", lambda v: 0 <= v <= 65535, "from 0 to 65535")
_SECONDS = Setting("number", lambda v: v >= 0, ">= 0")
_DAYS = Setting("number", lambda v: v > 0, "> 0", nullable=True, zero_is_none=True)

#: Every setting a file, the environment or a flag may give.
_SETTINGS: Final[Mapping[str, Setting]] = {
    "home": Setting("path"),
    "database_url": Setting("str", lambda v: v != "", "(not empty)", nullable=True),
    "pool_size": Setting("int", lambda v: v >= 1, ">= 1"),
    "host": Setting("str", lambda v: v != "", "(not empty)"),
    "allowed_hosts": Setting(
        "names",
        lambda v: len(v) <= 64 and all(0 < len(n) <= 255 and n.strip() == n for n in v),
        "(at most 64, each of 1 to 255 characters)",
    ),
    "feed": Setting("bool"),
    "feed_port": _PORT,
    "dashboard": Setting("bool"),
    "dashboard_port": _PORT,
    "idle_timeout": Setting("number", lambda v: v > 0, "> 0", nullable=True, zero_is_none=True),
    "end_on_branch_switch": Setting("bool"),
    "end_on_push": Setting("bool"),
    "mirror": Setting("str", lambda v: v != "", "(not empty)", nullable=True),
    "summary_interval": _SECONDS,
    "summarizer": Setting("str", lambda v: v in _summarizing.SUMMARIZERS, "(heuristic, dspy)"),
    "summarizer_model": Setting("str", _summarizing.is_model_name, "(provider/name)", True),
    "summarizer_url": Setting("str", is_http_url, "(an http or https URL)", True),
    "summarizer_api_key_env": Setting("str", is_env_name, "(a variable name)", True),
    "summarizer_calls_per_hour": Setting("int", lambda v: 1 <= v <= 100_000, "from 1 to 100000"),
    "summarizer_timeout": Setting("number", lambda v: 0 < v <= 600, "in (0, 600]"),
    "shutdown_grace": _SECONDS,
    "health_interval": Setting("number", lambda v: v > 0, "> 0"),
    "session": Setting("str", lambda v: 0 < len(v) <= 200, "of 1 to 200 characters"),
    "log_level": Setting("str", lambda v: v in LOG_LEVELS, "(" + ", ".join(LOG_LEVELS) + ")"),
    "log_format": Setting("str", lambda v: v in LOG_FORMATS, "(" + ", ".join(LOG_FORMATS) + ")"),
    "redact_secrets": Setting("bool"),
    "redact_disabled": Setting(
        "names",
        lambda v: all(n in _PATTERN_NAMES for n in v),
        "(of default secret patterns: " + ", ".join(sorted(_PATTERN_NAMES)) + ")",
    ),
    "redact_patterns": Setting(
        "table",
        _patterns_compile,
        "(at most 64; each name lowercase letters, digits and dashes, each regex compiling,"
        " new and at most 4096 characters)",
    ),
    "hook_recall": Setting("bool"),
    "briefing_budget": Setting(
        "int", lambda v: 100 <= v <= REHYDRATE_BUDGET_MAX, f"from 100 to {REHYDRATE_BUDGET_MAX}"
    ),
    "embedder": Setting("str", lambda v: v in EMBEDDERS, "(" + ", ".join(EMBEDDERS) + ")"),
    "embedder_model": Setting(
        "str", lambda v: 0 < len(v) <= 500, "of 1 to 500 characters", nullable=True
    ),
    "embedder_url": Setting("str", is_http_url, "(an http or https URL)", nullable=True),
    "embedder_api_key_env": Setting(
        "str", is_env_name, "(an environment variable's name)", nullable=True
    ),
    "embedder_dimensions": Setting(
        "int", lambda v: 1 <= v <= 16_000, "from 1 to 16000", nullable=True
    ),
    "embedder_batch_size": Setting(
        "int", lambda v: 1 <= v <= 4096, "from 1 to 4096", nullable=True
    ),
    "embedder_timeout": Setting("number", lambda v: 0 < v <= 3600, "> 0 and <= 3600"),
    "embedder_min_similarity": Setting(
        "number", lambda v: -1 <= v <= 1, "from -1 to 1", nullable=True
    ),
    "memory_sweep_interval": Setting("number", lambda v: v > 0, "> 0"),
    "memory_retention_days": _DAYS,
    "memory_superseded_retention_days": _DAYS,
    "memory_sweep_batch": Setting("int", lambda v: 1 <= v <= 100_000, "from 1 to 100000"),
    **MONITOR_SETTINGS,
    **CLUSTER_SETTINGS,
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
