"""The ``scribe`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import trio

__all__ = ["build_parser", "main"]

#: Subcommands register here: name -> (add arguments, run). ``run`` returns the exit status.
Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
COMMANDS: dict[str, tuple[str, Command]] = {}


def command(name: str, help_text: str) -> Callable[[Command], Command]:
    """Register a subcommand."""

    def register(cmd: Command) -> Command:
        COMMANDS[name] = (help_text, cmd)
        return cmd

    return register


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--step", type=float, default=0.2, help="seconds per demo step (default 0.2)")


def _demo_run(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    trio.run(lambda: run_demo(step=args.step))
    return 0


command("demo", "show the engine at work: priorities, a crash, a graceful cancel")(
    (_demo_args, _demo_run)
)

from . import _cli_sessions  # noqa: E402, F401  (registers serve, start, stop, list, ...)
from ._cli_memory import (  # noqa: E402
    add_recall_arguments,
    add_rehydrate_arguments,
    add_remember_arguments,
    run_recall,
    run_rehydrate,
    run_remember,
    sync_runner,
)

command("rehydrate", "print a token-budgeted memory bundle for a query")(
    (add_rehydrate_arguments, sync_runner(run_rehydrate))
)
command("remember", "store a message, or a decision with --decision")(
    (add_remember_arguments, sync_runner(run_remember))
)
command("recall", "search remembered messages and decisions")(
    (add_recall_arguments, sync_runner(run_recall))
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="scribe", description="Memory for concurrent coding sessions."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, (add_args, _)) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scribe`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _, (_, run) = COMMANDS[args.command]
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run through the imported module so that every subcommand module registers in one registry.
    from engine.app._cli import main as _main

    sys.exit(_main())
