"""``scribe mcp``: Scribe's MCP server on stdio, a thin client of the running daemon.

Many agents each start their own ``scribe mcp``; all of them share one daemon (its watchers and
its database) through its control socket. When no daemon answers, one is started detached on the
configured database (the embedded one by default) and standard error says so; when none can be
started, the server runs all the same and every tool call answers with an error saying what to do.
Standard output carries the protocol only.
"""

from __future__ import annotations

import argparse
import functools
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

import trio

import adapters

from .._core._literal import visible
from ._cli_control import call, common_arguments, config_for, print_json, refusals
from ._daemon import socket_path
from ._version import scribe_version

__all__ = ["mcp_arguments", "mcp_token_arguments", "run_mcp", "run_mcp_token", "start_daemon"]

#: Seconds to wait for a daemon started here to answer (a first start initialises its database).
START_TIMEOUT: Final = 60.0
#: Seconds to go on waiting after the started process exited (another one may be starting).
_AFTER_EXIT: Final = 3.0

_EPILOG: Final = """\
Add it to an agent (each agent starts its own; all share one daemon):
  Claude Code:  claude mcp add scribe -- scribe mcp
  Codex:        in ~/.codex/config.toml
                  [mcp_servers.scribe]
                  command = "scribe"
                  args = ["mcp"]
  Cursor:       in ~/.cursor/mcp.json (or .cursor/mcp.json)
                  {"mcpServers": {"scribe": {"command": "scribe", "args": ["mcp"]}}}
Over HTTP (agents in containers or on other hosts): the daemon serves /mcp on its dashboard port,
with a bearer token from `scribe mcp-token`.
"""


def mcp_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``scribe mcp``."""
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _EPILOG
    common_arguments(p, json_output=False)
    p.add_argument(
        "--no-start", action="store_true", help="do not start a daemon when none is running"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds a tool call waits for the daemon's answer (default 60)",
    )


def _say(text: str) -> None:
    sys.stderr.write(visible(f"scribe mcp: {text}") + "\n")
    sys.stderr.flush()


def _answers(sock: Path) -> bool:
    try:
        adapters.ControlClient(sock, timeout=2.0).call("ping")
    except (adapters.DaemonNotRunningError, adapters.DaemonError, OSError):
        return False
    return True


def start_daemon(home: Path, config_file: str | None, *, timeout: float = START_TIMEOUT) -> str:
    """Start ``scribe serve --no-session`` for ``home``, detached, and wait until it answers.

    Returns what happened, for people. Raises :class:`adapters.DaemonNotRunningError` when no
    daemon answers within ``timeout`` seconds.
    """
    command = [sys.executable, "-m", "engine", "serve", "--no-session", "--home", str(home)]
    if config_file:
        command += ["--config", config_file]
    child = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd="/",
    )
    sock = Path(socket_path(home))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(sock):
            return f"no daemon was running; started one (pid {child.pid}, home {home})"
        code = child.poll()
        if code is not None:
            deadline = min(deadline, time.monotonic() + _AFTER_EXIT)
        time.sleep(0.1)
    code = child.poll()
    raise adapters.DaemonNotRunningError(
        f"could not start a daemon (exit status {code}); its log is {home / 'logs' / 'scribe.log'}"
        if code is not None
        else f"a daemon was started (pid {child.pid}) but did not answer within {timeout:g} s"
    )


async def _serve(sock: Path, timeout: float) -> None:
    async with adapters.open_control_client(sock, timeout=timeout) as client:
        async with adapters.open_mcp_app(client, version=scribe_version(), cwd=Path.cwd()) as app:
            await adapters.serve_mcp_stdio(app)


def run_mcp(args: argparse.Namespace) -> int:
    """Serve MCP on stdio until the client closes it; 0 then."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    config = config_for(args)
    sock = Path(socket_path(config.home))
    if not _answers(sock):
        if args.no_start:
            _say("no daemon is running; tool calls fail until one does (`scribe serve`)")
        else:
            try:
                _say(start_daemon(config.home, getattr(args, "config", None)))
            except adapters.DaemonNotRunningError as exc:
                _say(f"{exc}; tool calls fail until a daemon runs (`scribe serve`)")
    if not (args.timeout > 0):
        raise SystemExit("scribe mcp: --timeout must be a positive number of seconds")
    trio.run(functools.partial(_serve, sock, args.timeout))
    return 0


def mcp_token_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``scribe mcp-token``."""
    common_arguments(p)
    p.add_argument("--days", type=float, default=30.0, help="days the token is valid (default 30)")
    p.add_argument("--name", default="mcp-client", help="who holds it (shown in logs)")


@refusals
def run_mcp_token(args: argparse.Namespace) -> int:
    """Print a bearer token for the daemon's ``/mcp`` endpoint and how to use it."""
    answer = call(args, "mcp_token", {"days": args.days, "name": args.name})
    if args.json:
        print_json(answer)
        return 0
    url, token = answer["url"], answer["token"]
    lines = [
        f"url    {url}",
        f"token  {token}",
        f"(valid for {args.days:g} days; keep it secret: it gives the sessions and memory)",
        "Claude Code:",
        f'  claude mcp add --transport http scribe {url} --header "Authorization: Bearer {token}"',
    ]
    sys.stdout.write("\n".join(visible(line) for line in lines) + "\n")
    return 0
