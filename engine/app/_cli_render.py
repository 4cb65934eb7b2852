"""How the session commands show things to people: tables, states in colour, times, summaries.

Everything printed for people is a :class:`rich.text.Text` made by :func:`literal`: user text
(names, tags, notes, paths, subjects, errors quoting them) is never read as rich markup, and its
control characters and bidi overrides are shown as escapes (:func:`engine.visible`). Styles come
only from the ``(text, style)`` pairs given to :func:`literal`; the console itself reads no markup.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._core._literal import visible
from .._ports._owners import owner_label

#: A piece of a line: text, or text and its style.
Part: TypeAlias = str | Text | tuple[str, str]

__all__ = [
    "STATE_STYLE",
    "ago",
    "brief",
    "console",
    "context_table",
    "kv_table",
    "literal",
    "print_summary",
    "sessions_table",
    "state",
    "when",
]

#: The colour of each session state.
STATE_STYLE: Final = {
    "active": "green",
    "paused": "yellow",
    "stopping": "yellow",
    "completed": "blue",
    "failed": "bold red",
    "cancelled": "magenta",
    "orphaned": "red",
    "starting": "white",
}


def console(stderr: bool = False) -> Console:
    """A console for people (no markup, emoji codes or highlighting; long lines kept whole)."""
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False, soft_wrap=True)


def literal(*parts: Part, multiline: bool = False) -> Text:
    """One line (or, with ``multiline``, a block) of ``parts`` shown exactly as they are.

    A ``str`` is taken literally (no markup) with its control characters escaped; a
    ``(str, style)`` pair the same, in that style; a :class:`Text` is kept as it is.
    """
    out = Text()
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append(visible(part[0], multiline=multiline), style=part[1])
        else:
            out.append(visible(part, multiline=multiline))
    return out


def ago(ts: float | None) -> str:
    """How long ago ``ts`` was, roughly ("3m ago")."""
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


def when(ts: float | None) -> str:
    """``ts`` as a local date and time."""
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def state(s: str) -> Text:
    """A state in its colour."""
    return literal((s, STATE_STYLE.get(s, "white")))


def sessions_table(records: list[dict[str, Any]], title: str | None = None) -> Table:
    """Session records, one row each (on an 80-column terminal a row takes a line or two: the
    id is never cut, what users name folds)."""
    t = Table(
        title=None if title is None else literal(title),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=0,
    )
    t.add_column("id", no_wrap=True)
    for col in ("name", "backlog", "kind", "state", "priority", "tags", "last activity", "daemon"):
        t.add_column(col, overflow="fold", min_width=6)
    for r in records:
        t.add_row(
            literal(r["id"]),
            literal(r["name"]),
            literal(r.get("backlog_id") or "-"),
            literal(r["kind"]),
            state(r["state"]),
            literal(r["priority"]),
            literal(", ".join(r.get("tags") or ()) or "-"),
            literal(ago(r.get("last_activity"))),
            literal(owner_label(r["daemon"]) if r.get("daemon") else r.get("owner") or "-"),
        )
    return t


def kv_table(rows: Sequence[tuple[str, Any]], title: str | None = None) -> Table:
    """Rows of name and value (a :class:`Text` value keeps its style, any other is shown literally)."""
    t = Table(
        title=None if title is None else literal(title), show_header=False, box=None, padding=(0, 2)
    )
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    for k, v in rows:
        if not isinstance(v, Text):
            v = literal("-" if v in (None, "", [], ()) else str(v))
        t.add_row(literal(k), v)
    return t


def print_summary(out: Console, s: Mapping[str, Any]) -> None:
    """A summary as headed lists."""
    final = ", final" if s["metadata"].get("final") else ""
    out.print(literal(("Summary", "bold"), f" (version {s['version']}{final})"))
    for title, key in (
        ("Key ideas", "key_ideas"),
        ("Decisions", "decisions"),
        ("Progress", "progress"),
        ("Next steps", "next_steps"),
    ):
        if s.get(key):
            out.print(literal("  ", (title, "bold")))
            for item in s[key]:
                out.print(literal("    - ", item))
    files = s.get("files_modified") or []
    if files:
        shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
        out.print(literal("  ", ("Files modified", "bold"), " ", shown))


def brief(name: str, value: Any) -> str:
    """One line about a context source's value."""
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
        shown = (f["path"] + (f" ({f['error']})" if f.get("error") else "") for f in value)
        return ", ".join(shown) or "none"
    return json.dumps(value, default=str)[:120]


def context_table(ctx: Mapping[str, Any]) -> Table:
    """A context, one row per source."""
    t = Table(
        title=literal(
            f"context of {ctx['session_id']} for {ctx['role']} "
            f"({ctx['elapsed'] * 1000:.1f} ms{', from memory' if ctx['from_cache'] else ''})"
        )
    )
    for col in ("source", "status", "ms", "cached", "value"):
        t.add_column(col, overflow="fold")
    for name, r in ctx["sources"].items():
        style = {"ok": "green", "error": "red", "timeout": "yellow"}[r["status"]]
        t.add_row(
            literal(name),
            literal((r["status"], style)),
            literal(f"{r['elapsed'] * 1000:.1f}"),
            literal("yes" if r["cached"] else "no"),
            literal(r["error"] if r["status"] != "ok" else brief(name, r["value"])),
        )
    return t


def print_status(out: Console, st: Mapping[str, Any]) -> None:
    """The daemon's ``status`` answer for people: where it serves, its counts, each gate's slots,
    and what it recommends."""
    up = f" (pid {st['pid']}, up {st['uptime']:.0f}s, embedder {st.get('embedder')})"
    out.print(literal(("Scribe daemon running", "bold green"), up))
    gates = [
        (f"{name} gate", _slots(g["capacity"]) + (", adaptive" if g["adaptive"] else ""))
        for name, g in st.get("gates", {}).items()
    ]
    rows = [
        ("dashboard", st.get("dashboard_url") or "(off)"),
        ("live feed", st.get("feed_url")),
        ("feed token", st.get("token")),
        ("control", st.get("socket")),
        ("database", st.get("database")),
        ("live sessions", len(st.get("live_sessions", []))),
        ("summaries made", st.get("summaries", {}).get("made")),
        ("context served from memory", st.get("context", {}).get("served_from_cache")),
    ]
    out.print(kv_table([*rows, *gates]))
    for advice in st.get("recommendations", []):
        out.print(literal(("recommended: ", "bold yellow"), advice))


def _slots(n: int) -> str:
    return f"{n} slot" if n == 1 else f"{n} slots"
