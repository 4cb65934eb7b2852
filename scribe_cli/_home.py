"""Where Scribe lives: the home directory, the configuration file and the control socket, found from
the environment and the file alone. Imports nothing but the standard library (the hook command finds
the daemon with it, and ``engine.app``'s configuration resolves the home with it).

The configuration file is ``$SCRIBE_CONFIG`` (or a file named on the command line), else
``$XDG_CONFIG_HOME/scribe/config.toml`` (default ``~/.config/scribe/config.toml``); a missing default
file is no error, a missing named one is. The home is ``$SCRIBE_HOME``, else the file's ``home`` key,
else ``$XDG_DATA_HOME/scribe`` (default ``~/.local/share/scribe``); a flag given on the command line
wins over all of them (``engine.app.load_config``). The control socket is ``<home>/scribe.sock``.

Paths are ``str`` here (``os.path``): the hook command runs on every prompt and tool call, and
importing :mod:`pathlib` would cost it several milliseconds of its few tens; ``engine.app`` makes
them :class:`~pathlib.Path`.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

if TYPE_CHECKING:  # no typing at run time: the hook command's start counts
    from collections.abc import Mapping
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


def _user_path(text: str | os.PathLike[str]) -> str:
    return os.path.expanduser(os.fspath(text))


def data_home(environ: Mapping[str, str] | None = None) -> str:
    """``$XDG_DATA_HOME/scribe``, else ``~/.local/share/scribe``: the home when nothing names one."""
    env = _env(environ)
    data = env.get("XDG_DATA_HOME")
    base = _user_path(data) if data else os.path.join(_user_path("~"), ".local", "share")
    return os.path.join(base, "scribe")


def default_home(environ: Mapping[str, str] | None = None) -> str:
    """``$SCRIBE_HOME``, else ``$XDG_DATA_HOME/scribe``, else ``~/.local/share/scribe`` (the home
    before the configuration file is read)."""
    env = _env(environ)
    if env.get("SCRIBE_HOME"):
        return _user_path(env["SCRIBE_HOME"])
    return data_home(env)


def config_path(environ: Mapping[str, str] | None = None) -> str:
    """``$SCRIBE_CONFIG``, else ``$XDG_CONFIG_HOME/scribe/config.toml`` (default ``~/.config``)."""
    env = _env(environ)
    if env.get("SCRIBE_CONFIG"):
        return _user_path(env["SCRIBE_CONFIG"])
    base = env.get("XDG_CONFIG_HOME")
    root = _user_path(base) if base else os.path.join(_user_path("~"), ".config")
    return os.path.join(root, "scribe", "config.toml")


def config_file_of(
    environ: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> tuple[str, bool]:
    """The configuration file to read (``config_file``, else :func:`config_path`) and whether it
    must exist (it was named: ``config_file`` or ``$SCRIBE_CONFIG``)."""
    env = _env(environ)
    if config_file is not None:
        return _user_path(config_file), True
    return config_path(env), bool(env.get("SCRIBE_CONFIG"))


def read_config_file(path: str | os.PathLike[str], *, required: bool) -> dict[str, Any] | None:
    """The TOML table of the configuration file, unchecked; None when it does not exist and is not
    ``required``. ``tomllib`` is imported only when there is a file to read.

    Raises:
        HomeConfigError: a required file is missing, it cannot be read, or it is not valid TOML.
    """
    source = os.fspath(path)
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


def choose_home(
    environ: Mapping[str, str] | None = None,
    from_file: str | os.PathLike[str] | None = None,
) -> str:
    """The home: ``$SCRIBE_HOME``, else ``from_file`` (the configuration file's ``home``), else
    :func:`data_home`."""
    env = _env(environ)
    if env.get("SCRIBE_HOME"):
        return default_home(env)
    return _user_path(from_file) if from_file is not None else data_home(env)


def resolve_home(
    environ: Mapping[str, str] | None = None,
    *,
    config_file: str | os.PathLike[str] | None = None,
) -> str:
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
        raise HomeConfigError("home", path, f"'home' must be a path, not {home!r}")
    return choose_home(env, home)


def socket_path(home: str | os.PathLike[str]) -> str:
    """The control socket of the daemon of ``home``."""
    return os.path.join(home, SOCKET_NAME)
