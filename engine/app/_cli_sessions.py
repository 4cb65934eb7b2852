"""The ``scribe`` commands that run the daemon and act on sessions through it.

``scribe serve`` runs the daemon; every other command here talks to it over its control socket
(``$SCRIBE_HOME/scribe.sock``) and says so plainly when none runs. People get tables; ``--json`` gives
scripts the daemon's answer as JSON.

Exit status: 0 done, 1 the daemon refused (bad input, unknown session ...), 2 bad command line,
3 no daemon runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import trio
from rich.console import Console
from rich.table import Table

import adapters

from .._core._errors import InvalidArgumentError, ScribeError
from .._scribe._scribe import ScribeConfig
from ._cli import command
from ._config import AppConfig, ConfigError, add_config_arguments, load_config
from ._control_handler import DaemonInfo
from ._daemon import run_daemon, socket_path

__all__: list[str] = []

EXIT_REFUSED = 1
EXIT_NO_DAEMON = 3

_STATE_STYLE = {
    "active": "green",
    "paused": "yellow",
    "stopping": "yellow",
    "completed": "blue",
    "failed": "bold red",
    "cancelled": "magenta",
    "orphaned": "red",
    "starting": "white",
}


# -- plumbing ----------------------------------------------------------------------------------------


def _config(args: argparse.Namespace, **flags: Any) -> AppConfig:
    try:
        return load_config(
            {"home": getattr(args, "home", None), **flags},
            config_file=getattr(args, "config", None),
        )
    except ConfigError as exc:
        raise SystemExit(f"scribe {args.command}: {exc}") from None


def _home(args: argparse.Namespace) -> Path:
    return _config(args).home


def _console(stderr: bool = False) -> Any:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _common(p: argparse.ArgumentParser, *, json_output: bool = True) -> None:
    add_config_arguments(p)
    if json_output:
        p.add_argument("--json", action="store_true", help="print the answer as JSON")


def _call(args: argparse.Namespace, op: str, params: Mapping[str, Any] | None = None) -> Any:
    return adapters.ControlClient(socket_path(_home(args))).call(op, params or {})


def _run(body: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        err = _console(stderr=True)
        try:
            return body(args)
        except adapters.DaemonNotRunningError as exc:
            err.print(f"[bold red]error:[/] {exc}")
            return EXIT_NO_DAEMON
        except adapters.DaemonError as exc:
            err.print(f"[bold red]error:[/] {exc.message or exc.type} [dim]({exc.type})[/]")
            return EXIT_REFUSED
        except (ScribeError, OSError) as exc:
            err.print(f"[bold red]error:[/] {exc}")
            return EXIT_REFUSED

    return run


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


def _ago(ts: float | None) -> str:
    if ts is None:
        return "-"
    d = max(0.0, time.time() - ts)
    if d < 60:
        return f"{d:.0f}s ago"
    if d < 3600:
        return f"{d / 60:.0f}m ago"
    if d < 86400:
        return f"{d / 3600:.1f}h ago"
    return f"{d / 86400:.1f}d ago"


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _state(s: str) -> str:
    style = _STATE_STYLE.get(s, "white")
    return f"[{style}]{s}[/{style}]"


def _split(values: Sequence[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or ():
        out.extend(x.strip() for x in v.split(",") if x.strip())
    return out


def _sessions_table(records: list[dict[str, Any]], title: str | None = None) -> Any:
    t = Table(title=title, show_lines=False)
    t.add_column("id", no_wrap=True)
    for col in ("name", "backlog", "kind", "state", "priority", "tags", "last activity"):
        t.add_column(col, overflow="fold")
    for r in records:
        t.add_row(
            r["id"],
            r["name"],
            r.get("backlog_id") or "-",
            r["kind"],
            _state(r["state"]),
            r["priority"],
            ", ".join(r.get("tags") or ()) or "-",
            _ago(r.get("last_activity")),
        )
    return t


def _kv_table(rows: Sequence[tuple[str, Any]], title: str | None = None) -> Any:
    t = Table(title=title, show_header=False, box=None, padding=(0, 2))
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    for k, v in rows:
        t.add_row(k, "-" if v in (None, "", [], ()) else str(v))
    return t


# -- serve -------------------------------------------------------------------------------------------


def _serve_args(p: argparse.ArgumentParser) -> None:
    _common(p, json_output=False)
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


def _serve_run(args: argparse.Namespace) -> int:
    config = _config(
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
    )
    try:
        # the scribe checks the mirror template; say so before anything starts
        ScribeConfig(mirror=config.mirror)
    except InvalidArgumentError as exc:
        raise SystemExit(f"scribe serve: {exc}") from None
    repo = None if args.no_session else Path(args.repo).absolute()

    def ready(info: DaemonInfo, notes: list[str]) -> None:
        # Plain lines (no wrapping), so URLs and the token can be copied and parsed.
        lines = [
            f"Scribe is running (pid {info.pid}). Press Ctrl-C to stop.",
            f"  dashboard   {info.dashboard_url or '(off)'}",
            f"  live feed   {info.feed_url}",
            f"  feed token  {info.token}",
            f"  control     {info.socket}",
            f"  database    {info.database}",
            f"  home        {info.home}",
        ]
        if info.session:
            lines.append(f"  session     {info.session} on {info.repo}")
        lines += [f"note: {note}" for note in notes]
        lines.append(
            "Try: scribe list | scribe info <session> | scribe context <session> --role coder"
        )
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()

    err = _console(stderr=True)
    try:
        trio.run(functools.partial(run_daemon, config, repo=repo, ready=ready))
    except ScribeError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        return EXIT_REFUSED
    except OSError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        if "address" in str(exc).lower():
            err.print(
                "a port is taken: choose others with --dashboard-port/--feed-port (0: any free)"
            )
        return EXIT_REFUSED
    sys.stdout.write("Scribe stopped.\n")
    return 0


command("serve", "run the scribe daemon (sessions, watchers, summaries, feed, dashboard)")(
    (_serve_args, _serve_run)
)


# -- status, list ----------------------------------------------------------------------------------


def _status_args(p: argparse.ArgumentParser) -> None:
    _common(p)


@_run
def _status_run(args: argparse.Namespace) -> int:
    st = _call(args, "status")
    if args.json:
        _print_json(st)
        return 0
    out = _console()
    out.print(f"[bold green]Scribe daemon running[/] (pid {st['pid']}, up {st['uptime']:.0f}s)")
    out.print(
        _kv_table(
            [
                ("dashboard", st.get("dashboard_url") or "(off)"),
                ("live feed", st.get("feed_url")),
                ("feed token", st.get("token")),
                ("control", st.get("socket")),
                ("database", st.get("database")),
                ("live sessions", len(st.get("live_sessions", []))),
                ("summaries made", st.get("summaries", {}).get("made")),
                ("context served from memory", st.get("context", {}).get("served_from_cache")),
            ]
        )
    )
    return 0


command("status", "show whether the daemon runs and where to look")((_status_args, _status_run))


def _list_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument(
        "--status",
        action="append",
        help="only sessions in these states (repeat or comma-separate: active,orphaned)",
    )
    p.add_argument("--tag", action="append", help="only sessions with all these tags")


@_run
def _list_run(args: argparse.Namespace) -> int:
    records = _call(args, "list", {"states": _split(args.status), "tags": _split(args.tag)})
    if args.json:
        _print_json(records)
        return 0
    out = _console()
    if not records:
        out.print("no sessions")
        return 0
    out.print(_sessions_table(records))
    return 0


command("list", "list sessions (filter by status and tags)")((_list_args, _list_run))


# -- start, stop -------------------------------------------------------------------------------------


def _start_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--repo", default=".", help="the work tree (default: the current directory)")
    p.add_argument("--backlog-id", help="the backlog item (default: found in the branch name)")
    p.add_argument(
        "--kind", default="implementation", help="brainstorming, implementation, debug or planning"
    )
    p.add_argument("--priority", default="medium", help="high, medium or low")
    p.add_argument("--tag", action="append", help="a tag (repeat or comma-separate)")
    p.add_argument("--name", help="a display name")
    p.add_argument("--description", default="", help="what the session is about")
    p.add_argument("--parent", help="the session this one forks or continues")
    p.add_argument("--related", action="append", help="a related session (repeatable)")
    p.add_argument("--file", action="append", help="a file every context shows (repeatable)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--idle-timeout", type=float, help="seconds without activity before it ends")
    g.add_argument("--no-idle-timeout", action="store_true", help="never end for idleness")


@_run
def _start_run(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {
        "repo": str(Path(args.repo).absolute()),
        "kind": args.kind,
        "priority": args.priority,
        "tags": _split(args.tag),
        "description": args.description,
        "related": _split(args.related),
        "files": list(args.file or ()),
    }
    for k in ("backlog_id", "name", "parent"):
        if getattr(args, k):
            params[k] = getattr(args, k)
    if args.no_idle_timeout:
        params["idle_timeout"] = None
    elif args.idle_timeout is not None:
        params["idle_timeout"] = args.idle_timeout
    rec = _call(args, "start", params)
    if args.json:
        _print_json(rec)
        return 0
    _console().print(
        f"started session [bold]{rec['id']}[/] ({rec['name']}"
        f"{', ' + rec['backlog_id'] if rec.get('backlog_id') else ''}) on {rec['repo_path']}"
    )
    return 0


command("start", "start a session on a work tree")((_start_args, _start_run))


def _session_arg(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("session", help="a session id, a unique id prefix, or a backlog id")


@_run
def _stop_run(args: argparse.Namespace) -> int:
    rec = _call(args, "stop", {"session": args.session})
    if args.json:
        _print_json(rec)
        return 0
    _console().print(f"session [bold]{rec['id']}[/] is {_state(rec['state'])}")
    return 0


command("stop", "stop a session")((_session_arg, _stop_run))


# -- append, tag, untag --------------------------------------------------------------------------------


def _append_args(p: argparse.ArgumentParser) -> None:
    _session_arg(p)
    p.add_argument("text", nargs="+", help="the note ('-' reads it from standard input)")


@_run
def _append_run(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == ["-"] else " ".join(args.text)
    entry = _call(args, "append", {"session": args.session, "text": text})
    if args.json:
        _print_json(entry)
        return 0
    _console().print(f"note stored as entry {entry['seq']} of session {entry['session_id']}")
    return 0


command("append", "append a note to a session's worklog")((_append_args, _append_run))


def _tag_args(p: argparse.ArgumentParser) -> None:
    _session_arg(p)
    p.add_argument("tags", nargs="+", help="tags")


def _tagger(op: str) -> Callable[[argparse.Namespace], int]:
    @_run
    def run(args: argparse.Namespace) -> int:
        rec = _call(args, op, {"session": args.session, "tags": _split(args.tags)})
        if args.json:
            _print_json(rec)
            return 0
        _console().print(f"session {rec['id']} tags: {', '.join(rec['tags']) or '(none)'}")
        return 0

    return run


command("tag", "add tags to a session")((_tag_args, _tagger("tag")))
command("untag", "remove tags from a session")((_tag_args, _tagger("untag")))


# -- info, context, worklog, summary ----------------------------------------------------------------


@_run
def _info_run(args: argparse.Namespace) -> int:
    info = _call(args, "info", {"session": args.session})
    if args.json:
        _print_json(info)
        return 0
    out = _console()
    r = info["session"]
    rows: list[tuple[str, Any]] = [
        ("id", r["id"]),
        ("name", r["name"]),
        ("state", _state(r["state"])),
        ("kind", r["kind"]),
        ("priority", r["priority"]),
        ("backlog", r.get("backlog_id")),
        ("tags", ", ".join(r.get("tags") or ())),
        ("repository", r.get("repo_path")),
        ("created", _when(r.get("created_at"))),
        ("last activity", _ago(r.get("last_activity"))),
        ("idle timeout", f"{r['idle_timeout']:g} s" if r.get("idle_timeout") else "never"),
        ("parent", r.get("parent_id")),
        ("error", r.get("error")),
        ("worklog entries", info.get("entries")),
    ]
    cap = info.get("capture")
    if cap:
        rows += [
            ("branch", cap.get("branch") or "(detached)"),
            ("head", (cap.get("head") or "")[:12]),
            ("upstream", cap.get("upstream")),
            ("tree", "clean" if cap.get("clean") else "changed"),
            ("context to refresh", ", ".join(info.get("context_dirty") or []) or "none"),
        ]
    out.print(_kv_table(rows, title=f"session {r['id']}"))
    s = info.get("summary")
    if s:
        _print_summary(out, s)
    return 0


command("info", "show a session")((_session_arg, _info_run))


def _print_summary(out: Any, s: Mapping[str, Any]) -> None:
    out.print(
        f"[bold]Summary[/] (version {s['version']}{', final' if s['metadata'].get('final') else ''})"
    )
    for title, key in (
        ("Key ideas", "key_ideas"),
        ("Decisions", "decisions"),
        ("Progress", "progress"),
        ("Next steps", "next_steps"),
    ):
        if s.get(key):
            out.print(f"  [bold]{title}[/]")
            for item in s[key]:
                out.print(f"    - {item}")
    files = s.get("files_modified") or []
    if files:
        shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
        out.print(f"  [bold]Files modified[/] {shown}")


def _context_args(p: argparse.ArgumentParser) -> None:
    _session_arg(p)
    p.add_argument(
        "--role",
        default="implementer",
        help="planner, implementer, coder, researcher or reviewer (default implementer)",
    )


def _brief(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name == "branch":
        return f"{value.get('branch') or '(detached)'} at {(value.get('head') or '')[:12]}"
    if name == "status":
        parts = [f"{len(value['changed'])} changed", f"{len(value['untracked'])} untracked"]
        if value.get("conflicts"):
            parts.append(f"{len(value['conflicts'])} conflicted")
        if value.get("upstream"):
            parts.append(f"{value['upstream']} +{value.get('ahead')}/-{value.get('behind')}")
        return ", ".join(parts) + (" (clean)" if value.get("clean") else "")
    if name == "diff":
        return f"{value['files_changed']} files, +{value['insertions']} -{value['deletions']}"
    if name == "log":
        return "; ".join(c["subject"] for c in value[:5]) + (" ..." if len(value) > 5 else "")
    if name == "worklog":
        return f"{len(value)} entries, last: {value[-1]['kind']}" if value else "no entries"
    if name == "summary":
        return f"version {value['version']}, {len(value.get('next_steps') or [])} next steps"
    if name == "related":
        return ", ".join(f"{r['id']} ({r['relation']})" for r in value) or "none"
    if name == "files":
        return ", ".join(f["path"] for f in value) or "none"
    return json.dumps(value, default=str)[:120]


@_run
def _context_run(args: argparse.Namespace) -> int:
    ctx = _call(args, "context", {"session": args.session, "role": args.role})
    if args.json:
        _print_json(ctx)
        return 0
    out = _console()
    t = Table(
        title=f"context of {ctx['session_id']} for {ctx['role']} "
        f"({ctx['elapsed'] * 1000:.1f} ms{', from memory' if ctx['from_cache'] else ''})"
    )
    for col in ("source", "status", "ms", "cached", "value"):
        t.add_column(col, overflow="fold")
    for name, r in ctx["sources"].items():
        style = {"ok": "green", "error": "red", "timeout": "yellow"}[r["status"]]
        t.add_row(
            name,
            f"[{style}]{r['status']}[/{style}]",
            f"{r['elapsed'] * 1000:.1f}",
            "yes" if r["cached"] else "no",
            r["error"] if r["status"] != "ok" else _brief(name, r["value"]),
        )
    out.print(t)
    return 0


command("context", "show a session's context for a role")((_context_args, _context_run))


def _worklog_args(p: argparse.ArgumentParser) -> None:
    _session_arg(p)
    p.add_argument("--limit", type=int, help="only the last N entries")


@_run
def _worklog_run(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"session": args.session, "markdown": not args.json}
    if args.limit is not None:
        params["limit"] = args.limit
    got = _call(args, "worklog", params)
    if args.json:
        _print_json(got)
        return 0
    sys.stdout.write(got["markdown"])
    sys.stdout.flush()
    return 0


command("worklog", "show a session's worklog as markdown")((_worklog_args, _worklog_run))


@_run
def _summary_run(args: argparse.Namespace) -> int:
    got = _call(args, "summary", {"session": args.session})
    if args.json:
        _print_json(got)
        return 0
    out = _console()
    if got["summary"] is None:
        out.print(f"session {got['session']['id']} has no summary yet")
        return 0
    _print_summary(out, got["summary"])
    return 0


command("summary", "show a session's newest summary")((_session_arg, _summary_run))


# -- cleanup, validate -------------------------------------------------------------------------------


def _cleanup_args(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument(
        "--days", type=float, required=True, help="remove sessions inactive for more days than this"
    )
    p.add_argument(
        "--status",
        action="append",
        help="final states to remove (default completed; e.g. completed,failed,cancelled)",
    )


@_run
def _cleanup_run(args: argparse.Namespace) -> int:
    got = _call(args, "cleanup", {"days": args.days, "states": _split(args.status)})
    if args.json:
        _print_json(got)
        return 0
    _console().print(f"removed {got['removed']} session(s) with their worklogs and summaries")
    return 0


command("cleanup", "remove completed sessions older than N days")((_cleanup_args, _cleanup_run))


def _validate_args(p: argparse.ArgumentParser) -> None:
    _common(p)


@_run
def _validate_run(args: argparse.Namespace) -> int:
    got = _call(args, "validate")
    if args.json:
        _print_json(got)
        return 0
    out = _console()
    if not got["orphaned"]:
        out.print("no orphaned sessions found")
        return 0
    out.print(_sessions_table(got["orphaned"], title="marked orphaned"))
    return 0


command("validate", "find sessions left by a dead daemon and mark them orphaned")(
    (_validate_args, _validate_run)
)
