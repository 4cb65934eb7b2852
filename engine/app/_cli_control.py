"""How the session commands reach the daemon: the common arguments, the configuration, one control
call, and the exit status each refusal gets.

Exit status: 0 done, 1 the daemon refused (bad input, unknown session ...), 2 bad command line,
3 no daemon runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import adapters

from .._core._errors import ScribeError
from .._core._literal import visible
from ._cli_render import console, literal
from ._config import AppConfig, add_config_arguments, load_config
from ._config_setting import ConfigError
from ._daemon import socket_path

__all__ = [
    "EXIT_NO_DAEMON",
    "EXIT_REFUSED",
    "call",
    "common_arguments",
    "config_for",
    "home_of",
    "print_json",
    "refusals",
    "split",
]

EXIT_REFUSED: Final = 1
EXIT_NO_DAEMON: Final = 3


def config_for(args: argparse.Namespace, **flags: Any) -> AppConfig:
    """The configuration for this command line (``--config``, ``--home`` and ``flags``)."""
    try:
        return load_config(
            {"home": getattr(args, "home", None), **flags},
            config_file=getattr(args, "config", None),
        )
    except ConfigError as exc:
        raise SystemExit(visible(f"scribe {args.command}: {exc}")) from None


def home_of(args: argparse.Namespace) -> Path:
    """The home whose daemon the command talks to."""
    return config_for(args).home


def common_arguments(p: argparse.ArgumentParser, *, json_output: bool = True) -> None:
    """``--config``, ``--home`` and (with ``json_output``) ``--json``."""
    add_config_arguments(p)
    if json_output:
        p.add_argument("--json", action="store_true", help="print the answer as JSON")


def call(args: argparse.Namespace, op: str, params: Mapping[str, Any] | None = None) -> Any:
    """One control request to the daemon; its result.

    Raises:
        DaemonNotRunningError: no daemon answers.
        DaemonError: the daemon refused.
    """
    return adapters.ControlClient(socket_path(home_of(args))).call(op, params or {})


def refusals(body: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``body`` with every refusal printed for people and turned into its exit status."""

    def run(args: argparse.Namespace) -> int:
        err = console(stderr=True)
        try:
            return body(args)
        except adapters.DaemonNotRunningError as exc:
            err.print(literal(("error:", "bold red"), f" {exc}"))
            return EXIT_NO_DAEMON
        except adapters.DaemonError as exc:
            err.print(
                literal(
                    ("error:", "bold red"), f" {exc.message or exc.type} ", (f"({exc.type})", "dim")
                )
            )
            return EXIT_REFUSED
        except (ScribeError, OSError) as exc:
            err.print(literal(("error:", "bold red"), f" {exc}"))
            return EXIT_REFUSED

    return run


def print_json(value: Any) -> None:
    """``value`` as indented JSON on standard output."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


def split(values: Sequence[str] | None) -> list[str]:
    """Repeated and comma-separated values as one list (``["a,b", "c"]``: a, b, c)."""
    out: list[str] = []
    for v in values or ():
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out
