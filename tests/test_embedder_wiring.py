"""The configured embedder is used end to end: ``scribe recall`` finds a note by its meaning, a
rehydrate bundle's evidence carries a ``vec`` rank, and the daemon's stack embeds what was stored
without vectors in the background, its backlog on ``/metrics`` and in ``status``."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import httpx2
import trio
from memory_support import count_rows, new_session_id
from transcript_support import claude_session, write_lines

import adapters
import engine
from engine.app import AppConfig, open_stack
from engine.app._cli_memory import (
    add_recall_arguments,
    add_rehydrate_arguments,
    add_remember_arguments,
    run_recall,
    run_rehydrate,
    run_remember,
)

_NOTE = "JWT lifetime too short, users logged out"
_QUESTION = "why did the login break after the token change?"


def _parse(add: object, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add(parser)  # type: ignore[operator]
    return parser.parse_args(argv)


async def test_recall_and_rehydrate_find_a_note_by_its_meaning(pg_url: str, tmp_path: Path) -> None:
    sid = new_session_id()
    config = AppConfig(home=tmp_path, database_url=pg_url, feed=False)  # the default embedder
    async with open_stack(config, scribe=False) as stack:
        assert isinstance(stack.embedder, adapters.WordLlamaEmbedder)
        assert stack.memory.embedder is stack.embedder
        assert stack.memory.vector_status is engine.VectorStatus.USED
        for text in (_NOTE, "the cart total rounds wrong", "bumped the chart colours for dark mode"):
            await run_remember(_parse(add_remember_arguments, [text, "--session", sid]), stack)
        out = io.StringIO()
        await run_recall(
            _parse(add_recall_arguments, [_QUESTION, "--session", sid, "--json"]), stack, out=out
        )
        found = json.loads(out.getvalue())["messages"]
        assert found[0]["content"] == _NOTE  # no word in common: found by its vector
        assert found[0]["ranks"] == {"vec": 1}

        out = io.StringIO()
        await run_rehydrate(
            _parse(add_rehydrate_arguments, [_QUESTION, "--session", sid, "--json"]),
            stack,
            out=out,
        )
        items = json.loads(out.getvalue())["items"]
        assert (items[0]["source"], items[0]["text"]) == ("messages", f"user: {_NOTE}")
        assert items[0]["ranks"] == {"vec": 1}


async def test_the_daemon_stack_embeds_in_the_background(fresh_pg_url: str, tmp_path: Path) -> None:
    config = AppConfig(
        home=tmp_path,
        database_url=fresh_pg_url,
        feed_port=0,
        dashboard_port=0,
        embedder="hashing",
        embedder_dimensions=64,
    )
    sid = new_session_id()
    transcript = tmp_path / "t.jsonl"
    write_lines(transcript, *claude_session())
    async with open_stack(config) as stack:
        assert stack.memory.embedder is stack.embedder
        report = await stack.transcripts.import_file(
            session_id=sid, path=str(transcript), agent="claude-code"
        )
        stored = report.counts.stored
        assert stored > 0
        imported = [engine.NewMessage(role="user", content=f"imported line {i}") for i in range(5)]
        await stack.memory.add_messages(sid, imported, embed=False)
        with trio.fail_after(60):
            # the service polls the backlog; nothing to wait on but its counters
            while stack.backfill.statistics().embedded < stored + 5:  # noqa: ASYNC110
                await trio.sleep(0.05)
        stats = stack.backfill.statistics()
        assert stats.model == "hashing-64" and stats.errors == 0
        assert await count_rows(stack.db, "memory_messages", "embedding_model IS NULL") == 0
        assert stack.dashboard is not None
        async with httpx2.AsyncClient() as http:
            metrics = (await http.get(stack.dashboard.url + "metrics")).text
        assert f'scribe_embedding_embedded_total{{model="hashing-64"}} {stored + 5}.0' in metrics
        assert 'scribe_embedding_backlog{model="hashing-64"}' in metrics
        found = await stack.memory.search_messages("imported line 3", session_id=sid)
        assert "vec" in found.hits[0].ranks
