"""Where Scribe lives: the home directory, the configuration file and the control socket, found from
the environment and the file alone. Imports nothing but the standard library (the hook command finds
the daemon with it, and ``engine.app``'s configuration resolves the home with it).

The configuration file is ``$SCRIBE_CONFIG`` (or a file named on the command line), else
``$XDG_CONFIG_HOME/scribe/config.toml`` (default ``~/.config/scribe/config.toml``); a missing default
file is no error, a missing named one is. The home is ``$SCRIBE_HOME``, else the file's ``home`` key,
else ``$XDG_DATA_HOME/scribe`` (default ``~/.local/share/scribe``); a flag given on the command line
wins over all of them (``engine.app.load_config``). The control socket is ``<home>/scribe.sock``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

__all__ = [
    "SOCKET_NAME",
    "HomeConfigError",
    "choose_home",
    "config_file_of",
    "config_path",
    "data_home",
    "default_home",
    "read_config_file",
    "resolve_home",
    "socket_path",
]

#: The control socket's name in the home.
SOCKET_NAME: Final = "scribe.sock"


class HomeConfigError(ValueError):
    """The configuration file cannot be used: a named one is missing, it cannot be read, it is not
    TOML, or its ``home`` is not a string.

    Attributes:
        key: the setting (``"config"`` for the file as a whole).
        source: the file's path.
    """

    def __init__(self, key: str, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.key = key
        self.source = source


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def data_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/scribe``, else ``~/.local/share/scribe``: the home when nothing names one."""
    env = _env(environ)
    data = env.get("XDG_DATA_HOME")
    base = Path(data).expanduser() if data else Path.home() / ".local" / "share"
    return base / "scribe"


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$SCRIBE_HOME``, else ``$XDG_DATA_HOME/scribe``, else ``~/.local/share/scribe`` (the home
    before the configuration file is read)."""
    env = _env(environ)
    if env.get("SCRIBE_HOME"):
        return Path(env["SCRIBE_HOME"]).expanduser()
    return data_home(env)


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$SCRIBE_CONFIG``, else ``$XDG_CONFIG_HOME/scribe/config.toml`` (default ``~/.config``)."""
    env = _env(environ)
    if env.get("SCRIBE_CONFIG"):
        return Path(env["SCRIBE_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME")
    root = Path(base).expanduser() if base else Path.home() / ".config"
    return root / "scribe" / "config.toml"


def config_file_of(
    environ: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> tuple[Path, bool]:
    """The configuration file to read (``config_file``, else :func:`config_path`) and whether it
    must exist (it was named: ``config_file`` or ``$SCRIBE_CONFIG``)."""
    env = _env(environ)
    if config_file is not None:
        return Path(config_file).expanduser(), True
    return config_path(env), bool(env.get("SCRIBE_CONFIG"))


def read_config_file(path: Path, *, required: bool) -> dict[str, Any] | None:
    """The TOML table of the configuration file, unchecked; None when it does not exist and is not
    ``required``. ``tomllib`` is imported only when there is a file to read.

    Raises:
        HomeConfigError: a required file is missing, it cannot be read, or it is not valid TOML.
    """
    source = str(path)
    try:
        with open(path, "rb") as f:
            import tomllib

            try:
                return tomllib.load(f)
            except tomllib.TOMLDecodeError as exc:
                raise HomeConfigError("config", source, f"not valid TOML: {exc}") from None
    except FileNotFoundError:
        if required:
            raise HomeConfigError(
                "config", source, "the configuration file does not exist"
            ) from None
        return None
    except OSError as exc:
        raise HomeConfigError("config", source, f"cannot be read: {exc}") from None


def choose_home(environ: Mapping[str, str] | None = None, from_file: Path | None = None) -> Path:
    """The home: ``$SCRIBE_HOME``, else ``from_file`` (the configuration file's ``home``), else
    :func:`data_home`."""
    env = _env(environ)
    if env.get("SCRIBE_HOME"):
        return default_home(env)
    return from_file if from_file is not None else data_home(env)


def resolve_home(
    environ: Mapping[str, str] | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
) -> Path:
    """The home as :func:`choose_home` decides, reading the configuration file only when
    ``$SCRIBE_HOME`` is not set (only its ``home`` key; ``engine.app.load_config`` checks the rest).

    Raises:
        HomeConfigError: the file cannot be used (see :func:`read_config_file`), or its ``home`` is
            not a string.
    """
    env = _env(environ)
    if env.get("SCRIBE_HOME"):
        return default_home(env)
    path, required = config_file_of(env, config_file)
    table = read_config_file(path, required=required)
    home = None if table is None else table.get("home")
    if home is not None and not isinstance(home, str):
        raise HomeConfigError("home", str(path), f"'home' must be a path, not {home!r}")
    return choose_home(env, None if home is None else Path(home).expanduser())


def socket_path(home: Path) -> Path:
    """The control socket of the daemon of ``home``."""
    return home / SOCKET_NAME
