"""The ``scribe`` command line: one table of commands, the parser built from it, and ``main``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Final, NamedTuple

import trio

from scribe_cli import HOOK_AGENTS, run_hook

from . import _cli_sessions as s
from ._cli_cluster import run_adopt
from ._cli_hooks import hooks_arguments, run_hooks
from ._cli_import import import_arguments, run_import
from ._cli_mcp import mcp_arguments, mcp_token_arguments, run_mcp, run_mcp_token
from ._cli_memory import (
    add_recall_arguments,
    add_rehydrate_arguments,
    add_remember_arguments,
    run_recall,
    run_rehydrate,
    run_remember,
    sync_runner,
)
from ._cli_monitoring import monitoring_arguments, run_monitoring
from ._cli_serve import dashboard_url_arguments, run_dashboard_url, run_serve, serve_arguments
from ._demo import run_demo
from ._version import scribe_version

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


class Command(NamedTuple):
    """One subcommand.

    Attributes:
        help: one line for ``scribe --help``.
        add_arguments: adds its arguments to its parser.
        run: runs it with the parsed arguments and returns the exit status.
    """

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--step", type=float, default=0.2, help="seconds per demo step (default 0.2)")


def _hook_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("agent", choices=HOOK_AGENTS, help="the coding agent (claude-code)")


def _run_hook(args: argparse.Namespace) -> int:
    return run_hook(args.agent)


def _run_demo(args: argparse.Namespace) -> int:
    trio.run(lambda: run_demo(step=args.step))
    return 0


#: Every subcommand, in the order ``scribe --help`` lists them.
COMMANDS: Final[Mapping[str, Command]] = {
    "demo": Command(
        "show the engine at work: priorities, a crash, a graceful cancel",
        _demo_arguments,
        _run_demo,
    ),
    "serve": Command(
        "run the scribe daemon (sessions, watchers, summaries, feed, dashboard)",
        serve_arguments,
        run_serve,
    ),
    "mcp": Command(
        "serve MCP on stdio for a coding agent (starts a daemon if none runs)",
        mcp_arguments,
        run_mcp,
    ),
    "mcp-token": Command(
        "print a bearer token for the daemon's /mcp endpoint (MCP over HTTP)",
        mcp_token_arguments,
        run_mcp_token,
    ),
    "status": Command(
        "show whether the daemon runs and where to look", s.status_arguments, s.run_status
    ),
    "monitoring": Command(
        "say whether the daemon's monitoring runs, or switch it on or off",
        monitoring_arguments,
        run_monitoring,
    ),
    "dashboard-url": Command(
        "print a new dashboard sign-in link (works once, for 10 minutes)",
        dashboard_url_arguments,
        run_dashboard_url,
    ),
    "list": Command("list sessions (filter by status and tags)", s.list_arguments, s.run_list),
    "start": Command("start a session on a work tree", s.start_arguments, s.run_start),
    "stop": Command("stop a session", s.session_arguments, s.run_stop),
    "adopt": Command(
        "take over a session a gone daemon left orphaned", s.session_arguments, run_adopt
    ),
    "append": Command("append a note to a session's worklog", s.append_arguments, s.run_append),
    "tag": Command("add tags to a session", s.tag_arguments, s.run_tag),
    "untag": Command("remove tags from a session", s.tag_arguments, s.run_untag),
    "info": Command("show a session", s.session_arguments, s.run_info),
    "context": Command("show a session's context for a role", s.context_arguments, s.run_context),
    "worklog": Command("show a session's worklog as markdown", s.worklog_arguments, s.run_worklog),
    "summary": Command("show a session's newest summary", s.session_arguments, s.run_summary),
    "cleanup": Command(
        "remove completed sessions older than N days", s.cleanup_arguments, s.run_cleanup
    ),
    "validate": Command(
        "find sessions left by a dead daemon and mark them orphaned",
        s.validate_arguments,
        s.run_validate,
    ),
    "rehydrate": Command(
        "print a token-budgeted memory bundle for a query",
        add_rehydrate_arguments,
        sync_runner(run_rehydrate),
    ),
    "remember": Command(
        "store a message, or a decision with --decision",
        add_remember_arguments,
        sync_runner(run_remember),
    ),
    "recall": Command(
        "search remembered messages and decisions",
        add_recall_arguments,
        sync_runner(run_recall),
    ),
    "hook": Command(
        "hand one hook event (JSON on stdin) to the daemon: what the installed hooks run",
        _hook_arguments,
        _run_hook,
    ),
    "hooks": Command(
        "install or uninstall Scribe's hooks in a coding agent's settings",
        hooks_arguments,
        run_hooks,
    ),
    "import": Command(
        "import a coding agent's transcripts into memory (claude-code or codex)",
        import_arguments,
        run_import,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command of :data:`COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="scribe", description="Memory for concurrent coding sessions."
    )
    parser.add_argument("--version", action="version", version=f"scribe {scribe_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        cmd.add_arguments(sub.add_parser(name, help=cmd.help, description=cmd.help))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scribe`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command].run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
