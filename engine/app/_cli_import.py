"""``scribe import claude-code PATH...`` and ``scribe import codex PATH...``: existing transcripts
into memory, through the daemon.

Each PATH is a transcript file or a folder searched for ``*.jsonl`` files (``~/.claude/projects``,
``~/.codex/sessions``; :func:`adapters.find_transcripts`). Each file goes to the daemon's
``import_transcript`` (again while it answers ``done`` false, so a large file moves in bounded
steps), which attaches it to the session of its conversation (created completed when none
exists) and stores what earlier imports did not: running the command again stores nothing twice.

Progress goes to standard error: a bar on a terminal, one plain line per file otherwise; the
summary line (files, records, stored, skipped, duplicates) goes to standard output (``--json``:
the totals as JSON). A path that cannot be read (missing, a FIFO, a device) is reported and the
others are still imported; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Final

from rich.progress import BarColumn, Progress, TextColumn

import adapters

from .._core._errors import ScribeError
from ._cli_control import (
    EXIT_NO_DAEMON,
    EXIT_REFUSED,
    common_arguments,
    home_of,
    print_json,
)
from ._cli_render import console, literal
from ._daemon import socket_path
from ._transcript_memory import AGENTS

__all__ = ["import_arguments", "run_import"]

#: Seconds the daemon may take to answer one import step.
STEP_TIMEOUT: Final = 300.0
_TOTALS: Final = ("lines", "records", "stored", "skipped", "duplicates", "summaries", "ignored")


def import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("agent", choices=AGENTS, help="whose transcripts: claude-code or codex")
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="transcript files, or folders holding them"
    )
    p.add_argument(
        "--session", help="import into this session (default: each conversation's own session)"
    )
    common_arguments(p)


def _files(paths: list[str], errors: list[str]) -> list[Path]:
    found: dict[Path, None] = {}
    for path in paths:
        try:
            for f in adapters.find_transcripts(os.path.abspath(path)):
                found.setdefault(f)
        except (ScribeError, OSError) as exc:
            errors.append(f"{path}: {exc}")
    return list(found)


class _Steps:
    """One file's import steps, reported as they come."""

    def __init__(self, client: adapters.ControlClient, agent: str, session: str | None) -> None:
        self.client = client
        self.agent = agent
        self.session = session

    def run(self, path: Path, progress: Any) -> dict[str, Any]:
        totals: dict[str, Any] = dict.fromkeys(_TOTALS, 0)
        args: dict[str, Any] = {"agent": self.agent, "path": str(path)}
        if self.session is not None:
            args["session"] = self.session
        while True:
            answer = self.client.call("import_transcript", args)
            for name in _TOTALS:
                totals[name] += answer[name]
            totals["session"] = answer["session"]
            totals["created"] = totals.get("created", False) or answer["created"]
            progress(answer["offset"], answer["size"])
            if answer["done"]:
                return totals


def run_import(args: argparse.Namespace) -> int:
    """Import the transcripts ``args.paths`` name; prints the summary line."""
    err = console(stderr=True)
    errors: list[str] = []
    files = _files(args.paths, errors)
    client = adapters.ControlClient(socket_path(home_of(args)), timeout=STEP_TIMEOUT)
    steps = _Steps(client, args.agent, args.session)
    totals: dict[str, int] = dict.fromkeys(_TOTALS, 0)
    imported = created = 0
    sessions: set[str] = set()
    bar = err.is_terminal and not args.json
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[file]}"),
        console=err, transient=True, disable=not bar,
    ) as progress:  # fmt: skip
        task = progress.add_task("importing", total=len(files) or 1, file="")
        for n, path in enumerate(files, 1):
            progress.update(task, file=path.name)

            def step(offset: int, size: int, n: int = n) -> None:
                progress.update(task, completed=n - 1 + (offset / size if size else 1))

            try:
                got = steps.run(path, step)
            except adapters.DaemonNotRunningError as exc:
                err.print(literal(("error:", "bold red"), f" {exc}"))
                return EXIT_NO_DAEMON
            except adapters.DaemonError as exc:
                errors.append(f"{path}: {exc.message or exc.type}")
                continue
            except (ScribeError, OSError) as exc:
                errors.append(f"{path}: {exc}")
                continue
            imported += 1
            created += bool(got["created"])
            sessions.add(got["session"])
            for name in _TOTALS:
                totals[name] += got[name]
            if not bar:
                err.print(
                    literal(
                        f"{path}: {got['records']} records, {got['stored']} stored, "
                        f"{got['duplicates']} duplicates (session {got['session']})"
                    )
                )
            progress.update(task, completed=n)
    for message in errors:
        err.print(literal(("error:", "bold red"), f" {message}"))
    if args.json:
        print_json(
            {"files": imported, "failed": len(errors), "sessions": sorted(sessions),
             "created": created, **totals}
        )  # fmt: skip
    else:
        line = (
            f"{imported} files, {totals['records']} records, {totals['stored']} stored, "
            f"{totals['skipped']} skipped, {totals['duplicates']} duplicates"
            f" ({len(sessions)} sessions, {created} created)"
        )
        if errors:
            line += f"; {len(errors)} failed"
        console().print(literal(line))
    sys.stdout.flush()
    return EXIT_REFUSED if errors else 0
