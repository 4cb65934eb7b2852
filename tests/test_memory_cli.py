"""The memory commands (rehydrate, remember, recall) run against the real database."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from memory_support import new_session_id

from engine.app import AppConfig, open_stack
from engine.app._cli_memory import (
    add_recall_arguments,
    add_rehydrate_arguments,
    add_remember_arguments,
    run_recall,
    run_rehydrate,
    run_remember,
)


def _parse(add: object, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add(parser)  # type: ignore[operator]
    return parser.parse_args(argv)


async def test_remember_recall_and_rehydrate(pg_url: str, tmp_path: Path) -> None:
    sid = new_session_id()
    config = AppConfig(home=tmp_path, database_url=pg_url, feed=False)
    async with open_stack(config, scribe=False) as stack:
        out = io.StringIO()
        args = _parse(
            add_remember_arguments,
            ["The feed hub conflates status topics", "--session", sid, "--json"],
        )
        assert await run_remember(args, stack, out=out) == 0
        message = json.loads(out.getvalue())
        assert message["kind"] == "message" and message["seq"] == 1

        out = io.StringIO()
        args = _parse(
            add_remember_arguments,
            [
                "Conflate status topics",
                "--decision",
                "--session",
                sid,
                "--file",
                "engine/_feed_hub.py",
                "--json",
            ],
        )
        await run_remember(args, stack, out=out)
        first = json.loads(out.getvalue())
        out = io.StringIO()
        args = _parse(
            add_remember_arguments,
            [
                "Conflate status topics per client",
                "--decision",
                "--supersedes",
                str(first["id"]),
                "--json",
            ],
        )
        await run_remember(args, stack, out=out)
        second = json.loads(out.getvalue())
        assert second["supersedes"] == first["id"] and second["session_id"] == sid

        out = io.StringIO()
        await run_recall(
            _parse(add_recall_arguments, ["conflate status", "--session", sid, "--json"]),
            stack,
            out=out,
        )
        found = json.loads(out.getvalue())
        assert [m["id"] for m in found["messages"]] == [message["id"]]
        assert [d["id"] for d in found["decisions"]] == [second["id"]]
        out = io.StringIO()
        await run_recall(
            _parse(
                add_recall_arguments,
                ["conflate", "--session", sid, "--kind", "decisions", "--superseded"],
            ),
            stack,
            out=out,
        )
        text = out.getvalue()
        assert f"[decisions:{first['id']}] (superseded)" in text and "messages:" not in text

        out = io.StringIO()
        args = _parse(
            add_rehydrate_arguments,
            ["status topics", "--session", sid, "--role", "reviewer", "--budget", "300"],
        )
        assert await run_rehydrate(args, stack, out=out) == 0
        text = out.getvalue()
        assert f"[decisions:{second['id']}]" in text and f"[messages:{message['id']}]" in text
        assert "-- messages: ok" in text and "/300 tokens" in text

        out = io.StringIO()
        await run_rehydrate(
            _parse(add_rehydrate_arguments, ["status", "--session", sid, "--json"]), stack, out=out
        )
        bundle = json.loads(out.getvalue())
        assert bundle["tokens"] <= bundle["token_budget"] == 2000
        assert {s["name"] for s in bundle["sources"]} >= {"messages", "decisions", "facts"}


async def test_recalled_text_is_shown_literally(pg_url: str, tmp_path: Path) -> None:
    sid = new_session_id()
    config = AppConfig(home=tmp_path, database_url=pg_url, feed=False)
    async with open_stack(config, scribe=False) as stack:
        hostile = "escapes \x1b[2J\x1b]0;owned\x07 and \u202eoverride\x9b"
        for argv in ([hostile], [hostile, "--decision"]):
            await run_remember(_parse(add_remember_arguments, [*argv, "--session", sid]), stack)
        shown = "escapes \\x1b[2J\\x1b]0;owned\\x07 and \\u202eoverride\\x9b"
        runs = ((run_recall, add_recall_arguments), (run_rehydrate, add_rehydrate_arguments))
        for run, add in runs:
            out = io.StringIO()
            await run(_parse(add, ["escapes override", "--session", sid]), stack, out=out)
            text = out.getvalue()
            assert shown in text and not any(c in text for c in "\x1b\x07\u202e\x9b")
        # --json is exact (and ASCII: JSON escapes what a terminal would act on)
        out = io.StringIO()
        await run_recall(
            _parse(add_recall_arguments, ["escapes override", "--session", sid, "--json"]),
            stack,
            out=out,
        )
        assert out.getvalue().isascii()
        found = json.loads(out.getvalue())
        assert [m["content"] for m in found["messages"]] == [hostile]
        assert [d["title"] for d in found["decisions"]] == [hostile]


def test_bad_command_lines_are_refused() -> None:
    with pytest.raises(SystemExit):
        _parse(add_rehydrate_arguments, ["q", "--budget", "0"])
    with pytest.raises(SystemExit):
        _parse(add_rehydrate_arguments, ["q", "--role", "boss"])
    with pytest.raises(SystemExit):
        _parse(add_remember_arguments, ["x", "--role", "robot"])


def test_sync_runner_opens_the_database_itself(pg_url: str) -> None:
    # The synchronous form the command table holds: opens the stack, runs, reports errors.
    code = (
        "import sys, argparse; from engine.app._cli_memory import add_remember_arguments as add,"
        " run_remember, sync_runner\n"
        "p = argparse.ArgumentParser(); add(p)\n"
        "sys.exit(sync_runner(run_remember)(p.parse_args(sys.argv[1:])))\n"
    )
    sid = new_session_id()
    ok = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "hello from the cli",
            "--session",
            sid,
            "--database-url",
            pg_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("message ")
    refused = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "x",
            "--decision",
            "--supersedes",
            "999999999",
            "--database-url",
            pg_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    assert "no live decision 999999999" in refused.stderr
