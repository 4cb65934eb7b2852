"""Transcript import through a real daemon (``import_transcript``, ``scribe import``) into the real
PostgreSQL: idempotent, incremental, private text and secrets never stored, Codex rollouts of both
shapes, folders, FIFOs refused; and the importer's queue (``schedule``) in a real stack."""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql
import pytest
import trio
from daemon_support import ControlDaemon
from fs_support import make_fifo, unblocking
from git_repos import git, make_repo
from pg_support import create_database, drop_database
from scribe_support import open_stack
from transcript_support import (
    BRANCH,
    IMAGE_DATA,
    REASONING,
    SESSION,
    THINKING,
    assistant,
    claude_session,
    codex_legacy_session,
    codex_session,
    line,
    user,
    write_lines,
)

from adapters import DaemonError
from engine.app._transcript_import import OFFSET_FACT, OFFSETS_SESSION

_rng = random.Random(12)
GHP = "ghp_" + "".join(_rng.choice(string.ascii_letters + string.digits) for _ in range(35)) + "7"
PRIVATE = "my bank PIN is 4921 and the vault code is swordfish"


class Daemon(ControlDaemon):
    """The daemon, and the messages it stored."""

    def messages(self, session: str) -> list[tuple[Any, ...]]:
        """``(source_id, role, content, metadata)`` of a session's messages, in order."""
        return self.rows(
            "SELECT source_id, role, content, metadata FROM memory_messages"
            " WHERE session_id = %s ORDER BY seq",
            session,
        )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("imports") / "work", files={"app.py": "a = 1\n"})
    git(root, "checkout", "-q", "-b", BRANCH)
    return root


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, pg_url: str, repo: Path) -> Iterator[Daemon]:
    url = create_database(pg_url)
    d = Daemon(tmp_path_factory.mktemp("home"), url, repo)
    try:
        yield d
    finally:
        d.close()
        drop_database(url)


def _in(repo: Path, objs: list[dict[str, Any]], session: str = SESSION) -> list[dict[str, Any]]:
    """The records with ``cwd`` the test repository and ``sessionId`` ``session``."""
    out = []
    for obj in objs:
        obj = dict(obj)
        if "cwd" in obj:
            obj["cwd"] = str(repo)
        if "sessionId" in obj:
            obj["sessionId"] = session
        out.append(obj)
    return out


def _everything(d: Daemon) -> str:
    """Every row of every table, as text."""
    with psycopg.connect(d.url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        return "\n".join(
            row[0]
            for (table,) in tables
            for row in conn.execute(
                psycopg.sql.SQL("SELECT t::text FROM {} t").format(psycopg.sql.Identifier(table))
            ).fetchall()
        )


def test_the_cli_imports_a_transcript_once_into_a_completed_session_of_its_work_tree(
    daemon: Daemon, repo: Path, tmp_path: Path
) -> None:
    path = tmp_path / f"{SESSION}.jsonl"
    write_lines(path, *_in(repo, claude_session()))
    first = daemon.process.run("import", "claude-code", str(path))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("1 files, "), first.stdout
    assert "0 duplicates (1 sessions, 1 created)" in first.stdout
    (session,) = daemon.call("list", repo=str(repo))["sessions"]
    assert session["state"] == "completed" and session["agent_session_id"] == SESSION
    assert session["repo_path"] == str(repo)
    stored = daemon.messages(session["id"])
    uids = [r[0] for r in stored]
    assert len(uids) == len(set(uids)) > 10
    texts = "\n".join(r[2] for r in stored)
    assert "Add a PostToolUse hook that records edits" in texts
    assert "Bash: pytest -q tests/" in texts and "[image: image/png]" in texts
    assert THINKING not in _everything(daemon) and IMAGE_DATA not in _everything(daemon)
    sidechain = [r for r in stored if r[3].get("sidechain")]
    assert [r[2] for r in sidechain] == ["Exploring the code base"]
    assert all(r[3]["agent"] == "claude-code" and "timestamp" in r[3] for r in stored)
    assert "Caveat: The messages below" not in texts  # harness text is not memory
    summaries = daemon.rows(
        "SELECT value FROM memory_context_facts WHERE session_id = %s"
        " AND fact_type = 'transcript_summary'",
        session["id"],
    )
    assert {"Hook capture for Claude Code"} <= {r[0] for r in summaries}
    # the memory session carries the repository: a recall on the repo finds the conversation
    hits = daemon.call("recall", query="PostToolUse hook records edits", repo=str(repo))["hits"]
    assert any(h["session_id"] == session["id"] for h in hits)

    again = daemon.process.run("import", "claude-code", str(path))
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("1 files, 0 records, 0 stored"), again.stdout
    assert "(1 sessions, 0 created)" in again.stdout
    # a lost offset re-reads the file: every message is a duplicate, none stored twice
    daemon.rows(
        "DELETE FROM memory_context_facts WHERE session_id = %s AND fact_type = %s RETURNING 1",
        OFFSETS_SESSION,
        OFFSET_FACT,
    )
    relost = daemon.call("import_transcript", agent="claude-code", path=str(path))
    assert relost["stored"] == 0 and relost["duplicates"] == len(stored)
    assert relost["session"] == session["id"] and not relost["created"]
    assert daemon.messages(session["id"]) == stored
    status = daemon.call("status")["transcripts"]
    assert status["imports"] >= 3 and status["errors"] == 0


def test_a_growing_file_and_a_torn_last_line_are_imported_once_each(
    daemon: Daemon, repo: Path, tmp_path: Path
) -> None:
    sid = "b1b2b3b4-0000-4000-8000-000000000001"
    path = tmp_path / "growing.jsonl"
    lines = [line(o) for o in _in(repo, claude_session(), sid)]
    path.write_bytes(b"".join(lines[:5]) + lines[5][:40])  # a torn last line
    first = daemon.call("import_transcript", agent="claude-code", path=str(path))
    assert first["done"] and first["created"] and first["offset"] == sum(map(len, lines[:5]))
    with path.open("ab") as f:
        f.write(lines[5][40:])
        f.writelines(lines[6:])
    second = daemon.call("import_transcript", agent="claude-code", path=str(path))
    assert second["session"] == first["session"] and second["duplicates"] == 0
    assert second["offset"] == second["size"] == path.stat().st_size
    stored = daemon.messages(first["session"])
    uids = [r[0] for r in stored]
    assert len(uids) == len(set(uids))
    assert {"u-3", "u-3/1"} <= set(uids)  # the torn line's two tool results
    with path.open("ab") as f:
        f.write(line(user("u-late", "a-4", "one more thing", sessionId=sid, cwd=str(repo))))
    third = daemon.call("import_transcript", agent="claude-code", path=str(path))
    assert (third["lines"], third["stored"]) == (1, 1)
    # a file replaced by a shorter one is read again from the start
    write_lines(path, *_in(repo, claude_session()[:4], sid))
    fourth = daemon.call("import_transcript", agent="claude-code", path=str(path))
    assert fourth["restarts"] == 1 and fourth["stored"] == 0 and fourth["duplicates"] > 0
    # a small budget moves a file in several steps
    big = tmp_path / "big.jsonl"
    write_lines(big, *_in(repo, claude_session(), "b1b2b3b4-0000-4000-8000-000000000002"))
    steps = []
    while not steps or not steps[-1]["done"]:
        steps.append(daemon.call("import_transcript", agent="claude-code", path=str(big), budget=1))
    assert len(steps) > 3 and sum(s["stored"] for s in steps) == len(uids)


def test_private_text_and_secrets_are_never_stored(
    daemon: Daemon, repo: Path, tmp_path: Path
) -> None:
    sid = "c1c2c3c4-0000-4000-8000-000000000001"
    path = tmp_path / "private.jsonl"
    write_lines(
        path,
        user("p-1", None, f"Deploy it. <private>{PRIVATE}</private> Token: {GHP}", sessionId=sid),
        assistant(
            "p-2",
            "p-1",
            [
                {"type": "text", "text": f"Using <private>{PRIVATE}</private>"},
                {
                    "type": "tool_use",
                    "id": "t1",
                    "name": "Bash",
                    "input": {"command": f"curl -H 'Authorization: token {GHP}' https://x"},
                },
            ],
            sessionId=sid,
        ),
        {"type": "summary", "summary": f"Deploy with {GHP} <private>{PRIVATE}</private>"},
    )
    got = daemon.call("import_transcript", agent="claude-code", path=str(path))
    assert got["stored"] == 3 and got["summaries"] == 1
    everything = _everything(daemon)
    assert PRIVATE not in everything and GHP not in everything
    texts = [r[2] for r in daemon.messages(got["session"])]
    assert texts[0].startswith("Deploy it. [private] Token: ")


def test_codex_rollouts_of_both_shapes(daemon: Daemon, repo: Path, tmp_path: Path) -> None:
    current = tmp_path / "sessions" / "2025" / "10" / "29" / "rollout-current.jsonl"
    current.parent.mkdir(parents=True)
    objs = codex_session()
    objs[0]["payload"]["cwd"] = str(repo)
    write_lines(current, *objs)
    legacy = tmp_path / "sessions" / "2025" / "07" / "16" / "rollout-legacy.jsonl"
    legacy.parent.mkdir(parents=True)
    write_lines(legacy, *codex_legacy_session())
    r = daemon.process.run("import", "codex", str(tmp_path / "sessions"), "--json")
    assert r.returncode == 0, r.stderr
    totals = json.loads(r.stdout)
    assert totals["files"] == 2 and totals["created"] == 2 and totals["duplicates"] == 0
    assert totals["skipped"] == 2  # the two record types of a future version
    by_agent = {s["agent_session_id"]: s for s in daemon.call("list", limit=100)["sessions"]}
    modern = by_agent["019a2d7a-41c4-78b1-b7cc-a45d62a89cd5"]
    assert modern["repo_path"] == str(repo) and modern["state"] == "completed"
    texts = [(r[1], r[2]) for r in daemon.messages(modern["id"])]
    assert ("user", "Fix the failing test\n\n[image: image/png]") in texts
    assert ("assistant", "Fixed: the test passes now.") in texts
    assert ("tool", "apply_patch: engine/app.py engine/new.py old.py") in texts
    assert not any("<environment_context>" in t for _, t in texts)
    old = by_agent["5973b6c0-94b8-487b-a530-2aeb6098ae0e"]
    assert old["repo_path"] is None
    assert ("tool", "ls: cannot open") in [(r[1], r[2]) for r in daemon.messages(old["id"])]
    assert REASONING not in _everything(daemon)
    again = daemon.process.run("import", "codex", str(tmp_path / "sessions"), "--json")
    assert json.loads(again.stdout)["stored"] == 0


def test_a_projects_folder_is_imported_file_by_file(
    daemon: Daemon, repo: Path, tmp_path: Path
) -> None:
    project = tmp_path / "projects" / "-home-ada-src-scribe"
    ids = [f"d1d2d3d4-0000-4000-8000-00000000000{i}" for i in range(3)]
    project.mkdir(parents=True)
    for sid in ids[:2]:
        write_lines(project / f"{sid}.jsonl", *_in(repo, claude_session(), sid))
    (project / ids[0] / "subagents").mkdir(parents=True)
    write_lines(
        project / ids[0] / "subagents" / "agent-1.jsonl",
        *_in(repo, claude_session()[2:5], ids[2]),
    )
    (project / "notes.txt").write_text("not a transcript")
    r = daemon.process.run("import", "claude-code", str(tmp_path / "projects"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("3 files, ") and "(3 sessions, 3 created)" in r.stdout
    assert r.stderr.count("records,") == 3  # one plain progress line per file (no terminal)


def test_a_transcript_naming_no_session_gets_one_from_its_path(
    daemon: Daemon, tmp_path: Path
) -> None:
    path = tmp_path / "anonymous.jsonl"
    write_lines(
        path,
        {"type": "summary", "summary": "An anonymous conversation", "leafUuid": "x"},
        {"type": "user", "uuid": "n-1", "message": {"role": "user", "content": "hello"}},
        {"type": "user", "uuid": "n-2", "sessionId": "bad\u0007id", "message": {"content": "x"}},
    )
    first = daemon.call("import_transcript", agent="claude-code", path=str(path))
    assert first["created"] and first["agent_session_id"].startswith("file:")
    assert first["cwd"] is None and first["stored"] == 2
    (record,) = [
        s for s in daemon.call("list", limit=100)["sessions"] if s["id"] == first["session"]
    ]
    assert record["repo_path"] is None and record["state"] == "completed"
    again = daemon.call("import_transcript", agent="claude-code", path=str(path))
    assert again["session"] == first["session"] and not again["created"]


def test_a_fifo_or_a_missing_path_is_refused_and_the_rest_imported(
    daemon: Daemon, repo: Path, tmp_path: Path
) -> None:
    fifo = make_fifo(tmp_path / "transcript.jsonl")
    good = tmp_path / "good.jsonl"
    write_lines(good, *_in(repo, claude_session()[:4], "e1e2e3e4-0000-4000-8000-000000000001"))
    with unblocking(fifo):
        with pytest.raises(DaemonError) as info:
            daemon.call("import_transcript", agent="claude-code", path=str(fifo))
        assert info.value.type == "NotRegularFileError"
        r = daemon.process.run(
            "import", "claude-code", str(fifo), str(tmp_path / "missing.jsonl"), str(good)
        )
    assert r.returncode == 1
    assert r.stdout.startswith("1 files, ") and "2 failed" in r.stdout
    assert "transcript.jsonl" in r.stderr and "missing.jsonl" in r.stderr
    with pytest.raises(DaemonError, match="absolute"):
        daemon.call("import_transcript", agent="claude-code", path="relative.jsonl")
    assert daemon.call("ping")["pong"]


async def test_scheduled_imports_run_in_the_background_and_survive_errors(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "work", files={"a.py": "a = 1\n"})
    path = tmp_path / "live.jsonl"
    objs = _in(repo, claude_session())
    write_lines(path, *objs[:6])
    async with open_stack(fresh_pg_url) as stack:
        record = await stack.scribe.start(repo, agent_session_id=SESSION)
        importer = stack.transcripts

        async def settled(imports: int, errors: int = 0) -> None:
            for _ in range(3000):  # bounded: at most a minute
                stats = importer.statistics()
                if stats.imports >= imports and stats.errors >= errors:
                    return
                await trio.sleep(0.02)
            raise AssertionError(f"the imports did not run: {importer.statistics()}")

        await importer.schedule(
            session_id=record.id, agent_session_id=SESSION, path=str(tmp_path / "gone.jsonl"),
            agent="claude-code",
        )  # fmt: skip
        await importer.schedule(
            session_id=record.id, agent_session_id=SESSION, path=str(path), agent="claude-code"
        )
        await settled(1, errors=1)
        stats = importer.statistics()
        assert stats.errors == 1 and "gone.jsonl" in (stats.last_error or "")
        first = await stack.memory.get_messages(record.id)
        assert first and all(m.source_id for m in first)
        memory_session = await stack.memory.ensure_session(record.id)
        assert memory_session.repo == str(repo)
        write_lines(path, *objs[6:], mode="ab")
        scheduled = importer.statistics().scheduled
        for _ in range(3):  # scheduled three times before the worker runs: queued once
            await importer.schedule(
                session_id=record.id, agent_session_id=SESSION, path=str(path), agent="claude-code"
            )
        assert importer.statistics().queued == 1
        assert importer.statistics().scheduled == scheduled + 1
        await settled(2)
        after = await stack.memory.get_messages(record.id)
        assert [m.source_id for m in after[: len(first)]] == [m.source_id for m in first]
        assert len({m.source_id for m in after}) == len(after) > len(first)
        errors = importer.statistics().errors
        await importer.schedule(
            session_id=record.id, agent_session_id=None, path="x.jsonl", agent="claude-code"
        )
        await importer.schedule(
            session_id=record.id, agent_session_id=None, path=str(path), agent="cursor"
        )
        stats = importer.statistics()
        assert stats.errors == errors + 2 and "cursor" in (stats.last_error or "")
        # no Scribe session: the conversation's memory is the agent's own
        await importer.schedule(
            session_id=None, agent_session_id="loose-1", path=str(path), agent="claude-code"
        )
        await settled(3)
        assert len(await stack.memory.get_messages("agent:loose-1")) == len(after)
