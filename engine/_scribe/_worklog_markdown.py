"""A worklog rendered as markdown for people (``scribe worklog``, the mirror file). Imports no trio."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._summary import Summary
from ._worklog import EntryKind, WorklogEntry

__all__ = ["render_markdown"]

_MAX_LISTED = 12


def _code(text: object) -> str:
    s = str(text).replace("\n", " ")
    fence = "``" if "`" in s else "`"
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _paths(paths: Iterable[Any]) -> str:
    items = [str(p) for p in paths]
    shown = ", ".join(_code(p) for p in items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _line(e: WorklogEntry) -> str:
    p = e.payload
    k = e.kind
    if k is EntryKind.SESSION_START:
        where = f" on {_code(p['branch'])}" if p.get("branch") else ""
        at = f" at {_code(str(p['head'])[:8])}" if p.get("head") else ""
        return f"**Session started**{where}{at}"
    if k is EntryKind.SESSION_STOP:
        reason = str(p.get("reason") or "requested").replace("_", " ")
        detail = f": {p['detail']}" if p.get("detail") else ""
        return f"**Session stopped** ({reason}){detail}"
    if k is EntryKind.FILES:
        parts = []
        for key in ("created", "modified", "deleted"):
            if p.get(key):
                parts.append(f"{key} {_paths(p[key])}")
        moved = [pair for pair in p.get("moved", ()) if len(pair) == 2]
        if moved:
            shown = ", ".join(f"{_code(a)} -> {_code(b)}" for a, b in moved[:_MAX_LISTED])
            parts.append(f"moved {shown}")
        return "**Files** " + "; ".join(parts) if parts else "**Files** (no change)"
    if k is EntryKind.COMMIT:
        files = p.get("files") or ()
        n = f" ({len(files)} file{'s' if len(files) != 1 else ''})" if files else ""
        return f"**Commit** {_code(str(p.get('hash', ''))[:8])} {p.get('subject', '')}{n}"
    if k is EntryKind.BRANCH_SWITCH:
        old = _code(p["from"]) if p.get("from") else "(detached)"
        new = _code(p["to"]) if p.get("to") else "(detached)"
        return f"**Branch switch** {old} -> {new}"
    if k is EntryKind.PUSH:
        return f"**Pushed** {_code(p.get('branch') or 'HEAD')} to {_code(p.get('upstream') or '?')}"
    if k is EntryKind.NOTE:
        text = str(p.get("text", "")).strip()
        lines = text.splitlines() or [""]
        first, rest = lines[0], lines[1:]
        body = "".join(f"\n  {line}" for line in rest)
        return f"**Note** {first}{body}"
    return f"**{k.value}**"  # pragma: no cover - every kind is handled above


def _summary_block(s: Summary) -> list[str]:
    out = [f"## Summary (version {s.version}{', final' if s.final else ''})", ""]
    for title, items in (
        ("Key ideas", s.key_ideas),
        ("Decisions", s.decisions),
        ("Progress", s.progress),
        ("Next steps", s.next_steps),
    ):
        if items:
            out.append(f"**{title}**")
            out.extend(f"- {x}" for x in items)
            out.append("")
    if s.files_modified:
        out.append(f"**Files modified**: {_paths(s.files_modified)}")
        out.append("")
    return out


def render_markdown(
    entries: Sequence[WorklogEntry],
    *,
    title: str | None = None,
    meta: Mapping[str, Any] | None = None,
    summary: Summary | None = None,
    tz: dt.tzinfo | None = None,
) -> str:
    """The worklog as markdown: a title, facts, the summary if given, then entries grouped by day.

    Args:
        entries: the entries, in any order (shown by ``seq``).
        title: the heading (default: ``Worklog``).
        meta: facts shown under the title (``session``, ``backlog``, ``branch``, ``state`` ...).
        summary: a summary to show before the entries.
        tz: the time zone of the times shown (default: local time).
    """
    out = [f"# {title or 'Worklog'}", ""]
    if meta:
        out.extend(f"- {k}: {_code(v)}" for k, v in meta.items() if v not in (None, "", ()))
        out.append("")
    if summary is not None:
        out.extend(_summary_block(summary))
    day = None
    if entries:
        out.append("## Entries")
    for e in sorted(entries, key=lambda x: x.seq):
        when = dt.datetime.fromtimestamp(e.created_at, tz or dt.datetime.now().astimezone().tzinfo)
        if when.date() != day:
            day = when.date()
            out.extend(["", f"### {day.isoformat()}", ""])
        out.append(f"- {when:%H:%M:%S} {_line(e)}")
    if not entries:
        out.append("_No entries yet._")
    return "\n".join(out).rstrip() + "\n"
