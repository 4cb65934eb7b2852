"""The memory commands of ``scribe``: ``rehydrate``, ``remember`` and ``recall``.

Each command is an ``add_*_arguments(parser)`` and an ``async run_*(args, stack, out=...)`` taking
the parsed arguments and an open stack (:func:`~engine.app.open_stack` without the scribe), so tests
call them directly. :func:`sync_runner` makes the synchronous form the command table holds: it
resolves the configuration (``--database-url``, ``$SCRIBE_DATABASE_URL``, the TOML file, or the
embedded server under the home) and opens the stack itself.

Exit status: 0 done, 1 refused (bad input, nothing found to supersede, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

import trio

from .._core._errors import ScribeError
from .._core._literal import visible
from .._memory._fusion import ROLES
from .._memory._rehydrator import rehydrate
from .._ports._memory_records import MessageRole, NewDecision, NewMessage
from ._config import add_config_arguments, load_config
from ._stack import Stack, open_stack

__all__ = [
    "add_recall_arguments",
    "add_rehydrate_arguments",
    "add_remember_arguments",
    "run_recall",
    "run_rehydrate",
    "run_remember",
    "sync_runner",
]

EXIT_OK = 0
EXIT_REFUSED = 1


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument(
        "--database-url", help="PostgreSQL URL (default: $SCRIBE_DATABASE_URL, else embedded)"
    )
    add_config_arguments(p)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def add_rehydrate_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``scribe rehydrate QUERY [--role] [--budget]``."""
    p.add_argument("query", help="what the memory bundle is for")
    p.add_argument("--session", help="engine session id (default: every session)")
    p.add_argument("--role", choices=ROLES, help="pack for this role")
    p.add_argument("--budget", type=_positive_int, default=2000, help="token budget (2000)")
    p.add_argument("--timeout", type=_positive_float, default=1.0, help="seconds (1.0)")
    _common(p)


def add_remember_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``scribe remember TEXT`` (a message) / ``--decision TITLE`` (a decision)."""
    p.add_argument("text", help="the message, or the decision's title with --decision")
    p.add_argument(
        "--session", default=None, help="session id (default: $SCRIBE_SESSION, else 'default')"
    )
    p.add_argument("--decision", action="store_true", help="record a decision, not a message")
    p.add_argument(
        "--role", default="user", choices=[r.value for r in MessageRole], help="message role"
    )
    p.add_argument("--ttl", type=_positive_float, help="seconds to keep it (default: forever)")
    p.add_argument("--body", default="", help="decision body")
    p.add_argument("--file", action="append", default=[], dest="files", help="decision file")
    p.add_argument("--entity", action="append", default=[], dest="entities", help="entity")
    p.add_argument("--supersedes", type=int, help="id of the decision this one replaces")
    _common(p)


def add_recall_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``scribe recall QUERY``."""
    p.add_argument("query", help="what to look for")
    p.add_argument("--session", help="only this session (default: every session)")
    p.add_argument(
        "--kind", choices=("messages", "decisions", "all"), default="all", help="what to search"
    )
    p.add_argument("--limit", type=_positive_int, default=10, help="hits per kind (10)")
    p.add_argument(
        "--superseded", action="store_true", help="include superseded decisions in the results"
    )
    _common(p)


def _emit(out: TextIO, args: argparse.Namespace, data: Any, lines: Sequence[str]) -> None:
    if getattr(args, "json", False):
        out.write(
            json.dumps(data, default=str) + "\n"
        )  # ASCII: no control character reaches a terminal
    else:
        for line in lines:
            out.write(visible(line, multiline=True) + "\n")


async def run_rehydrate(args: argparse.Namespace, stack: Stack, *, out: TextIO = sys.stdout) -> int:
    """Print a rehydrated memory bundle for ``args.query``.

    Cancellation: every source is cancelled; nothing is printed.
    """
    bundle = await rehydrate(
        args.query,
        sources=stack.memory_sources,
        session=args.session,
        role=args.role,
        token_budget=args.budget,
        timeout=args.timeout,
    )
    lines = [bundle.text] if bundle.items else ["(nothing found)"]
    lines.append(
        f"-- {len(bundle.items)} items, {bundle.tokens}/{bundle.token_budget} tokens, "
        f"{len(bundle.dropped)} dropped, {bundle.elapsed * 1000:.1f} ms, digest {bundle.digest[:12]}"
    )
    lines += [
        f"-- {r.name}: {r.status.value} {r.elapsed * 1000:.1f} ms, {r.count} items"
        + (f" ({r.error})" if r.error else "")
        for r in bundle.sources
    ]
    _emit(out, args, bundle.to_dict(), lines)
    return EXIT_OK


async def run_remember(args: argparse.Namespace, stack: Stack, *, out: TextIO = sys.stdout) -> int:
    """Store a message (or, with ``--decision``, a decision) and print its id.

    Cancellation: nothing is stored.
    """
    store = stack.memory
    session = args.session or stack.config.session
    if not args.decision:
        message = (
            await store.add_messages(
                session, [NewMessage(role=args.role, content=args.text, ttl=args.ttl)]
            )
        )[0]
        data = {"kind": "message", "id": message.id, "session_id": session, "seq": message.seq}
        _emit(out, args, data, [f"message {message.id} (session {session}, #{message.seq})"])
        return EXIT_OK
    decision = NewDecision(
        title=args.text,
        body=args.body,
        session_id=args.session or (None if args.supersedes else session),
        entities=tuple(args.entities),
        files=tuple(args.files),
        ttl=args.ttl,
    )
    if args.supersedes is not None:
        stored = await store.supersede_decision(args.supersedes, decision)
        text = f"decision {stored.id} supersedes {args.supersedes}"
    else:
        stored = await store.add_decision(decision)
        text = f"decision {stored.id} ({stored.status.value})"
    data = {
        "kind": "decision",
        "id": stored.id,
        "session_id": stored.session_id,
        "status": stored.status.value,
        "supersedes": args.supersedes,
    }
    _emit(out, args, data, [text])
    return EXIT_OK


async def run_recall(args: argparse.Namespace, stack: Stack, *, out: TextIO = sys.stdout) -> int:
    """Search messages and/or decisions and print the hits, best first.

    Cancellation: the searches are cancelled; nothing is printed.
    """
    store = stack.memory
    data: dict[str, Any] = {}
    lines: list[str] = []
    if args.kind in ("messages", "all"):
        found = await store.search_messages(args.query, session_id=args.session, limit=args.limit)
        data["messages"] = [
            {
                "id": h.item.id,
                "session_id": h.item.session_id,
                "seq": h.item.seq,
                "role": h.item.role.value,
                "content": h.item.content,
                "ranks": dict(h.ranks),
            }
            for h in found.hits
        ]
        data["vector"] = found.vector.value
        lines += [
            f"[messages:{h.item.id}] {h.item.session_id}#{h.item.seq} {h.item.role.value}: "
            f"{h.item.content}"
            for h in found.hits
        ]
    if args.kind in ("decisions", "all"):
        decisions = await store.search_decisions(
            args.query,
            session_id=args.session,
            include_superseded=args.superseded,
            limit=args.limit,
        )
        data["decisions"] = [
            {
                "id": h.item.id,
                "session_id": h.item.session_id,
                "title": h.item.title,
                "body": h.item.body,
                "status": h.item.status.value,
                "superseded_by": h.item.superseded_by,
                "files": list(h.item.files),
                "entities": list(h.item.entities),
                "ranks": dict(h.ranks),
            }
            for h in decisions.hits
        ]
        lines += [
            f"[decisions:{h.item.id}] ({h.item.status.value}) {h.item.title}"
            + (f" -> superseded by {h.item.superseded_by}" if h.item.superseded_by else "")
            for h in decisions.hits
        ]
    _emit(out, args, data, lines or ["(nothing found)"])
    return EXIT_OK


# -- the synchronous form the command table holds ------------------------------------------------


def sync_runner(
    body: Callable[[argparse.Namespace, Stack], Awaitable[int]],
) -> Callable[[argparse.Namespace], int]:
    """``body`` run on a stack of its own (the database, no scribe, no servers)."""

    def run(args: argparse.Namespace) -> int:
        try:
            config = load_config(
                {"home": args.home, "database_url": args.database_url, "feed": False},
                config_file=args.config,
            )
        except ScribeError as exc:
            print(visible(f"scribe: {exc}"), file=sys.stderr)
            return EXIT_REFUSED

        async def main() -> int:
            async with open_stack(config, scribe=False) as stack:
                return await body(args, stack)

        try:
            return trio.run(main)
        except ScribeError as exc:
            print(visible(f"scribe: {exc}"), file=sys.stderr)
            return EXIT_REFUSED

    return run
