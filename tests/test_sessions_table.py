"""`scribe list`'s table on the terminals people have: ids whole, rows a line or two at 80 columns."""

from __future__ import annotations

import io
import time

from rich.console import Console

from engine.app._cli_render import sessions_table

RECORDS = [
    {
        "id": "68daed90475bbad2",
        "name": "main",
        "backlog_id": None,
        "kind": "implementation",
        "state": "active",
        "priority": "medium",
        "tags": [],
        "last_activity": time.time() - 4,
        "daemon": None,
        "owner": "vm:25914",
    },
    {
        "id": "1234567890abcdef",
        "name": "fix-the-login-page-bug",
        "backlog_id": "SCR-1234",
        "kind": "review",
        "state": "cancelled",
        "priority": "high",
        "tags": ["ui", "auth"],
        "last_activity": time.time() - 4000,
        "daemon": None,
        "owner": "vm:25914",
    },
]


def _lines(width: int) -> list[str]:
    buffer = io.StringIO()
    Console(file=buffer, width=width, markup=False, highlight=False).print(sessions_table(RECORDS))
    return buffer.getvalue().splitlines()


def test_at_80_columns_rows_fit_and_ids_stay_whole() -> None:
    lines = _lines(80)
    assert max(len(line) for line in lines) <= 80
    header = next(i for i, line in enumerate(lines) if line.startswith("id "))
    rows = [i for i, line in enumerate(lines) if line[:16] in {r["id"] for r in RECORDS}]
    assert [lines[i][:16] for i in rows] == [r["id"] for r in RECORDS]
    assert header < rows[0]
    # the first row (short names) takes at most two lines: no column of single letters
    assert rows[1] - rows[0] <= 2
    assert "active" in lines[rows[0]] and "medium" in lines[rows[0]]


def test_on_a_wide_terminal_each_session_is_one_line() -> None:
    lines = [line for line in _lines(140) if line.strip()]
    assert len(lines) == 2 + len(RECORDS)  # the header, its rule, a line per session
    for record, line in zip(RECORDS, lines[2:], strict=True):
        assert line.split()[:2] == [record["id"], record["name"]]
        assert "implementation" in line or record["kind"] != "implementation"
