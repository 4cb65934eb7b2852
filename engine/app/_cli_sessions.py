"""The session commands: each talks to the daemon over its control socket and shows the answer.

People get tables; ``--json`` gives scripts the daemon's answer as JSON. Every command is a pair
``*_arguments(parser)`` and ``run_*(args) -> exit status``, listed in :mod:`engine.app._cli`'s table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._core._limits import PAGE_MAX
from .._core._literal import visible
from ._cli_control import call, common_arguments, print_json, refusals, split
from ._cli_render import (
    ago,
    console,
    context_table,
    kv_table,
    literal,
    print_status,
    print_summary,
    sessions_table,
    state,
    when,
)

__all__ = [
    "append_arguments",
    "cleanup_arguments",
    "context_arguments",
    "list_arguments",
    "run_append",
    "run_cleanup",
    "run_context",
    "run_info",
    "run_list",
    "run_start",
    "run_status",
    "run_stop",
    "run_summary",
    "run_tag",
    "run_untag",
    "run_validate",
    "run_worklog",
    "session_arguments",
    "start_arguments",
    "status_arguments",
    "tag_arguments",
    "validate_arguments",
    "worklog_arguments",
]

# -- status, list ----------------------------------------------------------------------------------


def status_arguments(p: argparse.ArgumentParser) -> None:
    common_arguments(p)


@refusals
def run_status(args: argparse.Namespace) -> int:
    st = call(args, "status")
    if args.json:
        print_json(st)
        return 0
    print_status(console(), st)
    return 0


def list_arguments(p: argparse.ArgumentParser) -> None:
    common_arguments(p)
    p.add_argument(
        "--status",
        action="append",
        help="only sessions in these states (repeat or comma-separate: active,orphaned)",
    )
    p.add_argument("--tag", action="append", help="only sessions with all these tags")
    p.add_argument("--repo", help="only sessions of the work tree containing this directory")
    p.add_argument(
        "--limit",
        type=int,
        default=PAGE_MAX,
        help=f"sessions per page (1-{PAGE_MAX}, default {PAGE_MAX})",
    )
    p.add_argument("--after", help="the page after this session (as the previous page said)")


@refusals
def run_list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {
        "states": split(args.status),
        "tags": split(args.tag),
        "limit": args.limit,
    }
    if args.after:
        params["after"] = args.after
    if args.repo:
        params["repo"] = str(Path(args.repo).absolute())
    page = call(args, "list", params)
    records, after = page["sessions"], page["next"]
    more = f"more sessions: scribe list --after {after}" if after else None
    if args.json:
        print_json(records)
        if more:
            print(more, file=sys.stderr)
        return 0
    out = console()
    if not records:
        out.print(literal("no sessions"))
        return 0
    out.print(sessions_table(records))
    if more:
        out.print(literal(more))
    return 0


# -- start, stop -------------------------------------------------------------------------------------


def start_arguments(p: argparse.ArgumentParser) -> None:
    common_arguments(p)
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
    p.add_argument(
        "--agent-session",
        help="the coding agent's own session id: while its session is live on this work tree, "
        "starting again answers that session",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--idle-timeout", type=float, help="seconds without activity before it ends")
    g.add_argument("--no-idle-timeout", action="store_true", help="never end for idleness")


@refusals
def run_start(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {
        "repo": str(Path(args.repo).absolute()),
        "kind": args.kind,
        "priority": args.priority,
        "tags": split(args.tag),
        "description": args.description,
        "related": split(args.related),
        "files": list(args.file or ()),
    }
    for k in ("backlog_id", "name", "parent"):
        if getattr(args, k):
            params[k] = getattr(args, k)
    if args.agent_session is not None:
        params["agent_session_id"] = args.agent_session
    if args.no_idle_timeout:
        params["idle_timeout"] = None
    elif args.idle_timeout is not None:
        params["idle_timeout"] = args.idle_timeout
    rec = call(args, "start", params)
    if args.json:
        print_json(rec)
        return 0
    console().print(
        literal(
            "started session ",
            (rec["id"], "bold"),
            f" ({rec['name']}{', ' + rec['backlog_id'] if rec.get('backlog_id') else ''})"
            f" on {rec['repo_path']}",
        )
    )
    return 0


def session_arguments(p: argparse.ArgumentParser) -> None:
    common_arguments(p)
    p.add_argument("session", help="a session id, a unique id prefix, or a backlog id")


@refusals
def run_stop(args: argparse.Namespace) -> int:
    rec = call(args, "stop", {"session": args.session})
    if args.json:
        print_json(rec)
        return 0
    console().print(literal("session ", (rec["id"], "bold"), " is ", state(rec["state"])))
    return 0


# -- append, tag, untag --------------------------------------------------------------------------------


def append_arguments(p: argparse.ArgumentParser) -> None:
    session_arguments(p)
    p.add_argument("text", nargs="+", help="the note ('-' reads it from standard input)")


@refusals
def run_append(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == ["-"] else " ".join(args.text)
    entry = call(args, "append", {"session": args.session, "text": text})
    if args.json:
        print_json(entry)
        return 0
    console().print(
        literal(f"note stored as entry {entry['seq']} of session {entry['session_id']}")
    )
    return 0


def tag_arguments(p: argparse.ArgumentParser) -> None:
    session_arguments(p)
    p.add_argument("tags", nargs="+", help="tags")


def _tagger(op: str) -> Callable[[argparse.Namespace], int]:
    @refusals
    def run(args: argparse.Namespace) -> int:
        rec = call(args, op, {"session": args.session, "tags": split(args.tags)})
        if args.json:
            print_json(rec)
            return 0
        console().print(literal(f"session {rec['id']} tags: {', '.join(rec['tags']) or '(none)'}"))
        return 0

    return run


run_tag = _tagger("tag")
run_untag = _tagger("untag")


# -- info, context, worklog, summary ----------------------------------------------------------------


@refusals
def run_info(args: argparse.Namespace) -> int:
    info = call(args, "info", {"session": args.session})
    if args.json:
        print_json(info)
        return 0
    out = console()
    r = info["session"]
    rows: list[tuple[str, Any]] = [
        ("id", r["id"]),
        ("name", r["name"]),
        ("state", state(r["state"])),
        ("kind", r["kind"]),
        ("priority", r["priority"]),
        ("backlog", r.get("backlog_id")),
        ("tags", ", ".join(r.get("tags") or ())),
        ("repository", r.get("repo_path")),
        ("created", when(r.get("created_at"))),
        ("last activity", ago(r.get("last_activity"))),
        ("idle timeout", f"{r['idle_timeout']:g} s" if r.get("idle_timeout") else "never"),
        ("parent", r.get("parent_id")),
        ("agent session", r.get("agent_session_id")),
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
    out.print(kv_table(rows, title=f"session {r['id']}"))
    s = info.get("summary")
    if s:
        print_summary(out, s)
    return 0


def context_arguments(p: argparse.ArgumentParser) -> None:
    session_arguments(p)
    p.add_argument(
        "--role",
        default="implementer",
        help="planner, implementer, coder, researcher or reviewer (default implementer)",
    )


@refusals
def run_context(args: argparse.Namespace) -> int:
    ctx = call(args, "context", {"session": args.session, "role": args.role})
    if args.json:
        print_json(ctx)
        return 0
    console().print(context_table(ctx))
    return 0


def worklog_arguments(p: argparse.ArgumentParser) -> None:
    session_arguments(p)
    p.add_argument("--limit", type=int, help="only the last N entries")
    p.add_argument("--since", type=int, help="only the entries after entry N (its seq)")
    p.add_argument("--before", type=int, help="only the entries before entry N (its seq)")


@refusals
def run_worklog(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"session": args.session, "markdown": not args.json}
    if args.limit is not None:
        params["limit"] = args.limit
    for name in ("since", "before"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    got = call(args, "worklog", params)
    if args.json:
        print_json(got)
        return 0
    sys.stdout.write(visible(got["markdown"], multiline=True))
    sys.stdout.flush()
    return 0


@refusals
def run_summary(args: argparse.Namespace) -> int:
    got = call(args, "summary", {"session": args.session})
    if args.json:
        print_json(got)
        return 0
    out = console()
    if got["summary"] is None:
        out.print(literal(f"session {got['session']['id']} has no summary yet"))
        return 0
    print_summary(out, got["summary"])
    return 0


# -- cleanup, validate -------------------------------------------------------------------------------


def cleanup_arguments(p: argparse.ArgumentParser) -> None:
    common_arguments(p)
    p.add_argument(
        "--days", type=float, required=True, help="remove sessions inactive for more days than this"
    )
    p.add_argument(
        "--status",
        action="append",
        help="final states to remove (default completed; e.g. completed,failed,cancelled)",
    )


@refusals
def run_cleanup(args: argparse.Namespace) -> int:
    got = call(args, "cleanup", {"days": args.days, "states": split(args.status)})
    if args.json:
        print_json(got)
        return 0
    console().print(
        literal(f"removed {got['removed']} session(s) with their worklogs and summaries")
    )
    return 0


def validate_arguments(p: argparse.ArgumentParser) -> None:
    common_arguments(p)


@refusals
def run_validate(args: argparse.Namespace) -> int:
    got = call(args, "validate")
    if args.json:
        print_json(got)
        return 0
    out = console()
    if not got["orphaned"]:
        out.print(literal("no orphaned sessions found"))
        return 0
    out.print(sessions_table(got["orphaned"], title="marked orphaned"))
    return 0
