"""A worklog rendered as markdown for people (``scribe worklog``, the mirror file). Imports no trio.

Every piece of user text (names, notes, commit subjects, branches, paths, summaries) shows
literally, both in the raw markdown a terminal prints and once rendered: control characters and
bidi overrides are escaped by :func:`engine.visible`; names and paths go in code spans fenced
longer than any backtick run they hold; free text gets a backslash before whatever would make
markdown structure (emphasis, code, links, HTML, tables, strikethrough, entities, and at the start
of a line headings, quotes, lists and rules) and nowhere else, so it stays readable.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from .._core._literal import visible
from .._ports._summary_record import Summary
from .._ports._worklog_records import EntryKind, WorklogEntry

__all__ = ["render_markdown"]

_MAX_LISTED = 12


# Inline: code, emphasis, HTML and autolinks, tables, strikethrough, an entity, an inline link or
# image (`](`), a backslash that would escape what follows or break the line.
_INLINE: Final = re.compile(
    r"[`*<|~]|&(?=#?\w+;)|(?<=\])\(|\\(?=[!-/:-@\[-`{-~]|$)|(?<![^\W_])_|_(?![^\W_])"
)
# At the start of a line: a heading, quote, list item, rule, setext underline, link definition
# or task box; an ordered list item's `1.`.
_LINE_START: Final = re.compile(
    r"^(\s*)(?:(#{1,6}(?=\s|$)|>|[-+](?=\s|$|-)|=|\[)|(\d{1,9})([.)])(?=\s|$))"
)


def _code(text: object) -> str:
    """``text`` as an inline code span, on one line."""
    s = visible(text)
    fence = "`" * (max((len(run) for run in re.findall("`+", s)), default=0) + 1)
    spaced = s.startswith(" ") and s.endswith(" ") and s.strip() != ""
    pad = " " if s.startswith("`") or s.endswith("`") or spaced else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def _text(text: object, *, line_start: bool = False, tabs: bool = False) -> str:
    """``text`` as markdown text that renders as itself, on one line.

    Args:
        line_start: the text begins a markdown line (or a list item), where block markers count.
        tabs: keep tabs (a line of a multi-line note); otherwise they are escaped.
    """
    shown = visible(text, multiline=tabs).replace("\n", "\\n")  # the line goes on
    s = _INLINE.sub(lambda m: "\\" + m.group(), shown)
    if line_start:
        s = _LINE_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[2] else f"{m[1]}{m[3]}\\{m[4]}", s)
    return s


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
        detail = f": {_text(p['detail'])}" if p.get("detail") else ""
        return f"**Session stopped** ({_text(reason)}){detail}"
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
        subject = _text(p.get("subject", ""))
        return f"**Commit** {_code(str(p.get('hash', ''))[:8])} {subject}{n}"
    if k is EntryKind.BRANCH_SWITCH:
        old = _code(p["from"]) if p.get("from") else "(detached)"
        new = _code(p["to"]) if p.get("to") else "(detached)"
        return f"**Branch switch** {old} -> {new}"
    if k is EntryKind.PUSH:
        return f"**Pushed** {_code(p.get('branch') or 'HEAD')} to {_code(p.get('upstream') or '?')}"
    if k is EntryKind.NOTE:
        text = visible(p.get("text", ""), multiline=True).strip()
        lines = text.split("\n")
        first, rest = _text(lines[0], tabs=True), lines[1:]
        body = "".join(f"\n  {_text(line, line_start=True, tabs=True)}" for line in rest)
        return f"**Note** {first}{body}"
    if k is EntryKind.TOOL:
        return _tool_line(p)
    return f"**{_text(k.value)}**"  # pragma: no cover - every kind is handled above


def _tool_line(p: Mapping[str, Any]) -> str:
    """An agent's tool call: its name, the paths it touched (or the start of its input), and
    whether it failed."""
    paths = [x for x in p.get("paths") or () if isinstance(x, str)]
    what = _paths(paths) if paths else ""
    if not what and p.get("input"):
        first = visible(str(p["input"]), multiline=True).strip().split("\n")[0][:160]
        what = _code(first) if first else ""
    failed = " (failed)" if p.get("ok") is False else ""
    agent = f" by {_text(str(p['agent']))}" if p.get("agent") else ""
    return f"**Tool** {_code(str(p.get('tool', '?')))}{agent} {what}{failed}".rstrip()


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
            out.extend(f"- {_text(x, line_start=True)}" for x in items)
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
    heading = re.sub("#(?=\\s*$)", "\\\\#", _text(title or "Worklog"))
    out = [f"# {heading}", ""]
    if meta:
        out.extend(f"- {_text(k)}: {_code(v)}" for k, v in meta.items() if v not in (None, "", ()))
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
