"""User text shown literally: engine.visible, the CLI's renderers, and the worklog's markdown once
rendered by a CommonMark (with GFM tables and strikethrough) renderer."""

from __future__ import annotations

import datetime as dt
import html
import io
import re

import pytest
from markdown_it import MarkdownIt
from rich.console import Console

import engine
from engine._ports._summary_record import Summary
from engine._ports._worklog_records import EntryKind, WorklogEntry
from engine._scribe._worklog_markdown import render_markdown
from engine.app._cli_render import (
    context_table,
    kv_table,
    literal,
    print_summary,
    sessions_table,
)

UNSAFE = [chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]] + [
    chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
]


def test_visible_escapes_every_control_and_bidi_character() -> None:
    for c in UNSAFE:
        shown = engine.visible(f"a{c}b")
        assert c not in shown and shown.startswith("a\\") and shown.endswith("b"), repr(c)
    assert engine.visible("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert engine.visible("a\u202eb\x9b\x7f") == "a\\u202eb\\x9b\\x7f"
    assert engine.visible("tab\tnew\nline\r") == "tab\\tnew\\nline\\r"
    assert engine.visible("undecodable \udcff") == "undecodable \\udcff"
    # a multi-line field keeps its lines and tabs (CR LF as a newline), nothing else
    assert engine.visible("a\tb\r\nc\x1b", multiline=True) == "a\tb\nc\\x1b"
    assert engine.visible("a\rb", multiline=True) == "a\\rb"
    for text in ("plain", "[skip ci] é ü 漢字 \\x1b", "C:\\Users"):
        assert engine.visible(text) == text
    mixed = "".join(UNSAFE) + "ok"
    for multiline in (False, True):
        once = engine.visible(mixed, multiline=multiline)
        assert engine.visible(once, multiline=multiline) == once


def _printed(renderable: object) -> str:
    buffer = io.StringIO()
    out = Console(file=buffer, width=300, force_terminal=True, markup=False, highlight=False)
    out.print(renderable)
    return buffer.getvalue()


def test_cli_renderers_show_markup_and_escapes_literally() -> None:
    record = {
        "id": "abc",
        "name": "fix [/] parser [bold]x",
        "backlog_id": None,
        "kind": "debug",
        "state": "active",
        "priority": "high",
        "tags": ["[red]"],
        "last_activity": None,
    }
    summary = {
        "version": 1,
        "metadata": {},
        "decisions": ["[skip ci] stays \x1b[2J"],
        "next_steps": ["[/]"],
        "files_modified": ["\x1b]0;title\x07.txt"],
    }
    context = {
        "session_id": "abc",
        "role": "coder",
        "elapsed": 0.001,
        "from_cache": False,
        "sources": {
            "log": {
                "status": "ok",
                "elapsed": 0.0,
                "cached": False,
                "value": [{"subject": "[skip ci] bump version"}],
            },
            "files": {
                "status": "error",
                "elapsed": 0.0,
                "cached": False,
                "value": None,
                "error": "cannot read '[/]\x1b[31m'",
            },
        },
    }
    buffer = io.StringIO()
    out = Console(file=buffer, width=300, force_terminal=True, markup=False, highlight=False)
    print_summary(out, summary)
    shown = [
        _printed(sessions_table([record], title="[/]")),
        _printed(kv_table([("name", record["name"]), ("error", "\u202e[/]")], title="[b]")),
        _printed(context_table(context)),
        _printed(literal("error: ", ("[/]", "bold red"), " \x1b[31m")),
        buffer.getvalue(),
    ]
    # styles are ours (force_terminal: they are printed as SGR sequences); user text has none
    text = re.sub(r"\x1b\[[0-9;]*m", "", "".join(shown))
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    for literally in (
        "fix [/] parser [bold]x",
        "[red]",
        "[skip ci] stays \\x1b[2J",
        "\\x1b]0;title\\x07.txt",
        "[skip ci] bump version",
        "cannot read '[/]\\x1b[31m'",
        "\\u202e[/]",
        "error: [/] \\x1b[31m",
    ):
        assert literally in text, literally


def _rendered(md: str) -> str:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md)


HOSTILE_NOTES = [
    "[skip ci] bump version",
    "fix [/] parser",
    "see [x](javascript:alert(1)) and ![i](x.png) <img src=x onerror=alert(1)>",
    "*bold* **strong** _it_ __init__ snake_case `code` ``two`` a|b ~~del~~ &amp; &#65; <b>",
    "C:\\Users\\x and \\* and trailing \\",
    "https://example.com/<script>",
]
HOSTILE_LINES = [
    "# heading",
    "###### six",
    "- item",
    "+ item",
    "* item",
    "1. one",
    "2) two",
    "> quote",
    "---",
    "===",
    "[ref]: http://x",
    "[ ] box",
    "| a | b |",
    "|---|---|",
    "```",
    "~~~",
]


def _entries() -> list[WorklogEntry]:
    texts = [*HOSTILE_NOTES, "first line\n" + "\n".join(HOSTILE_LINES)]
    entries = [
        WorklogEntry("s", i + 1, EntryKind.NOTE, 0.0, {"text": t}) for i, t in enumerate(texts)
    ]
    n = len(entries)
    return [
        *entries,
        WorklogEntry("s", n + 1, EntryKind.COMMIT, 0.0, {"hash": "abc", "subject": "[a](b) *c*"}),
        WorklogEntry(
            "s",
            n + 2,
            EntryKind.FILES,
            0.0,
            {"created": ["we``ird`.py", "`x", " y ", "\x1b[2J.md"]},
        ),
        WorklogEntry("s", n + 3, EntryKind.SESSION_START, 0.0, {"branch": "a`b", "head": "abc"}),
    ]


def test_worklog_markdown_renders_user_text_as_itself() -> None:
    summary = Summary("s", 1, next_steps=("[ ] ship", "# not a heading", "- nested?"))
    md = render_markdown(
        _entries(), title="Worklog: fix [/] <b>x</b> #", summary=summary, tz=dt.UTC
    )
    assert "\x1b" not in md
    out = _rendered(md)
    # no structure came from user text: one h1, our h2/h3, one list of entries, no links, ...
    for tag in ("a", "img", "em", "blockquote", "ol", "table", "del", "pre", "b", "script"):
        assert f"<{tag}>" not in out and f"<{tag} " not in out, tag
    assert out.count("<h1>") == 1 and out.count("<strong>") == len(_entries()) + 1
    # ... and every piece of it reads as typed once rendered
    text = html.unescape(re.sub(r"<[^>]+>", "", out))
    assert "Worklog: fix [/] <b>x</b> #" in text
    for note in HOSTILE_NOTES:
        assert note in text, note
    for line in HOSTILE_LINES:
        assert f"\n{line}\n" in text, line
    for shown in ("[a](b) *c*", "we``ird`.py", "`x", " y ", "\\x1b[2J.md", "a`b", "[ ] ship"):
        assert shown in text, shown
    assert "# not a heading" in text and "- nested?" in text
    codes = re.findall(r"<code>(.*?)</code>", out)
    assert {"we``ird`.py", "`x", " y ", "\\x1b[2J.md", "a`b"} <= {html.unescape(c) for c in codes}


@pytest.mark.parametrize("text", ["[skip ci] bump version", "a snake_case name", "C:\\Users\\x"])
def test_worklog_markdown_stays_readable(text: str) -> None:
    md = render_markdown([WorklogEntry("s", 1, EntryKind.NOTE, 0.0, {"text": text})], tz=dt.UTC)
    assert f"**Note** {text}\n" in md
