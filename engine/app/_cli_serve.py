"""``scribe serve``: the daemon's command line, resolved into a configuration, then run."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import trio

from .._core._errors import InvalidArgumentError, ScribeError
from .._core._literal import visible
from .._scribe._scribe_config import ScribeConfig
from ._cli_control import EXIT_REFUSED, call, common_arguments, config_for, print_json, refusals
from ._cli_render import console, literal
from ._control_handler import DaemonInfo
from ._daemon import run_daemon
from ._logging import LOG_FORMATS, LOG_LEVELS

__all__ = ["dashboard_url_arguments", "run_dashboard_url", "run_serve", "serve_arguments"]


def serve_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``scribe serve`` (each overrides its configuration setting)."""
    common_arguments(p, json_output=False)
    p.add_argument(
        "--repo",
        default=".",
        help="a repository to start a session on (default: the current directory)",
    )
    p.add_argument("--no-session", action="store_true", help="start no session at startup")
    p.add_argument("--host", help="interface for the feed and dashboard (default 127.0.0.1)")
    p.add_argument(
        "--dashboard-port",
        type=int,
        help="dashboard port (default 8765, $SCRIBE_DASHBOARD_PORT; 0: any free port)",
    )
    p.add_argument(
        "--feed-port",
        type=int,
        help="live feed port (default 8766, $SCRIBE_FEED_PORT; 0: any free port)",
    )
    p.add_argument("--no-dashboard", action="store_true", help="serve no dashboard")
    p.add_argument(
        "--idle-timeout",
        type=float,
        help="seconds without activity before a session ends (default 1800; 0: never)",
    )
    p.add_argument(
        "--no-end-on-branch-switch",
        action="store_true",
        help="keep a session going when its work tree switches branch",
    )
    p.add_argument(
        "--no-end-on-push",
        action="store_true",
        help="keep a session going after a completed push",
    )
    p.add_argument(
        "--mirror",
        default=None,
        help="mirror each worklog as markdown at this path in its work tree, e.g. "
        "'.scribe/{backlog}.md'",
    )
    p.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL (default: $SCRIBE_DATABASE_URL, else embedded)",
    )
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="the least level logged to standard error and the home's logs/scribe.log "
        "(default info, $SCRIBE_LOG_LEVEL)",
    )
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="text for people, json for one object a line (default text, $SCRIBE_LOG_FORMAT)",
    )


def run_serve(args: argparse.Namespace) -> int:
    """Run the daemon until a signal stops it; 0 when it stopped cleanly, 1 when it could not run."""
    config = config_for(
        args,
        database_url=args.database_url,
        host=args.host,
        feed_port=args.feed_port,
        dashboard_port=args.dashboard_port,
        dashboard=False if args.no_dashboard else None,
        idle_timeout=args.idle_timeout,
        end_on_branch_switch=False if args.no_end_on_branch_switch else None,
        end_on_push=False if args.no_end_on_push else None,
        mirror=args.mirror,
        log_level=args.log_level,
        log_format=args.log_format,
    )
    try:
        # the scribe checks the mirror template; say so before anything starts
        ScribeConfig(mirror=config.mirror)
    except InvalidArgumentError as exc:
        raise SystemExit(visible(f"scribe serve: {exc}")) from None
    repo = None if args.no_session else Path(args.repo).absolute()

    def ready(info: DaemonInfo, notes: list[str], login_url: str | None) -> None:
        # Plain lines (no wrapping), so URLs and the token can be copied and parsed. The dashboard
        # link signs one browser in, once, within LOGIN_TOKEN_TTL; `scribe dashboard-url` makes more.
        lines = [
            f"Scribe is running (pid {info.pid}). Press Ctrl-C to stop.",
            f"  dashboard   {login_url or '(off)'}",
            f"  live feed   {info.feed_url or '(off)'}",
            f"  feed token  {info.token}",
            f"  control     {info.socket}",
            f"  database    {info.database}",
            f"  embedder    {info.embedder}",
            f"  home        {info.home}",
        ]
        if info.session:
            lines.append(f"  session     {info.session} on {info.repo}")
        lines += [f"note: {note}" for note in notes]
        lines.append(
            "Try: scribe list | scribe info <session> | scribe context <session> --role coder"
        )
        sys.stdout.write("\n".join(visible(line) for line in lines) + "\n")
        sys.stdout.flush()

    err = console(stderr=True)
    try:
        trio.run(functools.partial(run_daemon, config, repo=repo, ready=ready, log_to_home=True))
    except ScribeError as exc:
        err.print(literal(("error:", "bold red"), f" {exc}"))
        return EXIT_REFUSED
    except OSError as exc:
        err.print(literal(("error:", "bold red"), f" {exc}"))
        if "address" in str(exc).lower():
            err.print(
                literal(
                    "a port is taken: choose others with --dashboard-port/--feed-port (0: any free)"
                )
            )
        return EXIT_REFUSED
    sys.stdout.write("Scribe stopped.\n")
    return 0


def dashboard_url_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``scribe dashboard-url``."""
    common_arguments(p)


@refusals
def run_dashboard_url(args: argparse.Namespace) -> int:
    """Print a new dashboard sign-in link (one-time token) from the running daemon."""
    answer = call(args, "dashboard_url")
    if args.json:
        print_json(answer)
    else:
        sys.stdout.write(answer["url"] + "\n")
        minutes = round(answer["expires_in"] / 60)
        sys.stderr.write(f"(the link works once, within {minutes} minutes)\n")
    return 0
