"""One setting of :mod:`._config`: its type, its check, and how a flag, a TOML value or an
environment variable becomes its value; and the error every bad setting raises."""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .._core._errors import InvalidArgumentError

__all__ = ["ConfigError", "Setting", "is_env_name", "is_http_url"]

_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


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


def is_env_name(v: str) -> bool:
    """Whether ``v`` can name an environment variable."""
    return _ENV_NAME.fullmatch(v) is not None


def is_http_url(v: str) -> bool:
    """Whether ``v`` is an http or https URL (at most 2048 characters)."""
    parts = urllib.parse.urlsplit(v)
    return len(v) <= 2048 and parts.scheme in ("http", "https") and bool(parts.netloc)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True, slots=True)
class Setting:
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
