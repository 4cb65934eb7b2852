"""Hook benchmark (issue 12), the import figure: a 10,000-line Claude Code transcript imported through
the daemon, in lines per second (target >= 2,000).

``bench/hooks.py`` calls :func:`import_figure` on the ``scribe serve`` it runs; run alone
(``.venv/bin/python bench/hooks_import.py``, ``--lines N`` for another size) this starts its own
``scribe serve`` (embedded PostgreSQL in a temporary home unless ``SCRIBE_DATABASE_URL`` is set).

The transcript is generated with a fixed seed from the public format (see
``adapters/agents/_claude_transcript.py``), a realistic mix: prompts, assistant turns with text,
thinking and tool calls (Edit, Write, Bash, Read, Grep), tool results from a line to 20 KB (one of
1 MB), sidechain turns, harness notices, bookkeeping snapshots, summaries, an unknown record type.
The time is wall time from the first ``import_transcript`` request to the last answer (the daemon
reads, scrubs and stores it in bounded steps, as ``scribe import`` asks for it); a second import of
the same file is timed too (it reads nothing new: the offset). Exit status 0 only if the target is
met (``--no-fail``: always 0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

import adapters  # noqa: E402

SCRIBE = Path(sys.executable).with_name("scribe")
LINES = 10_000
TARGET = 2_000.0  # lines per second
SESSION = "9f8e7d6c-5b4a-4392-8170-65a4b3c2d1e0"
CWD = "/home/ada/src/shop"
CALL_TIMEOUT = 300.0

_WORDS = (
    "the watcher reads git status after each burst of file events and the summary names which "
    "files changed why the tests failed and what the next step is for the migration of the "
    "session registry to the new schema with its indexes and the feed hub"
).split()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def _envelope(
    kind: str, uuid: str, parent: str | None, message: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "parentUuid": parent, "isSidechain": False, "userType": "external", "cwd": CWD,
        "sessionId": SESSION, "version": "2.0.14", "gitBranch": "feature/import", "type": kind,
        "message": message, "uuid": uuid, "timestamp": "2025-10-14T09:30:00.123Z", **extra,
    }  # fmt: skip


def _tool_use(rng: random.Random, n: int) -> dict[str, Any]:
    tool = rng.choice(["Edit", "Write", "Bash", "Read", "Grep", "Bash", "Edit"])
    path = f"{CWD}/engine/module_{rng.randrange(200)}.py"
    inputs = {
        "Edit": {"file_path": path, "old_string": _text(rng, 12), "new_string": _text(rng, 14)},
        "Write": {"file_path": path, "content": _text(rng, 300)},
        "Bash": {"command": f"pytest -q tests/test_{rng.randrange(90)}.py", "description": "run"},
        "Read": {"file_path": path},
        "Grep": {"pattern": rng.choice(_WORDS), "path": CWD},
    }
    return {"type": "tool_use", "id": f"toolu_{n:06d}", "name": tool, "input": inputs[tool]}


def transcript_lines(count: int, seed: int = 12) -> list[bytes]:
    """``count`` lines of a realistic Claude Code transcript."""
    rng = random.Random(seed)
    out: list[bytes] = []
    parent: str | None = None
    pending: list[str] = []

    def add(obj: dict[str, Any]) -> None:
        out.append(json.dumps(obj, ensure_ascii=False).encode() + b"\n")

    n = 0
    while len(out) < count:
        n += 1
        roll = rng.random()
        uuid = f"{n:08d}-0000-4000-8000-{rng.getrandbits(48):012x}"
        if pending:
            call = pending.pop()
            size = 1_000_000 if n == 500 else rng.choice([40, 200, 1_000, 4_000, 20_000])
            content = (_text(rng, 8) + "\n") * max(1, size // 60)
            block = {"type": "tool_result", "tool_use_id": call, "content": content[:size]}
            add(_envelope("user", uuid, parent, {"role": "user", "content": [block]}))
        elif roll < 0.18:
            add(_envelope("user", uuid, parent, {"role": "user", "content": _text(rng, 25)}))
        elif roll < 0.70:
            blocks: list[dict[str, Any]] = []
            if rng.random() < 0.5:
                blocks.append({"type": "thinking", "thinking": _text(rng, 60), "signature": "c2ln"})
            blocks.append({"type": "text", "text": _text(rng, rng.randrange(10, 120))})
            if rng.random() < 0.6:
                call = _tool_use(rng, n)
                blocks.append(call)
                pending.append(call["id"])
            message = {
                "model": "claude-sonnet-4-5-20250929",
                "role": "assistant",
                "content": blocks,
            }
            add(_envelope("assistant", uuid, parent, message, isSidechain=rng.random() < 0.05))
        elif roll < 0.80:
            add({"type": "file-history-snapshot", "messageId": uuid, "snapshot": {}})
        elif roll < 0.88:
            add({"type": "system", "subtype": "info", "content": _text(rng, 10), "uuid": uuid,
                 "sessionId": SESSION, "timestamp": "2025-10-14T09:31:00Z"})  # fmt: skip
        elif roll < 0.90:
            add({"type": "summary", "summary": _text(rng, 12), "leafUuid": uuid})
        elif roll < 0.91:
            add({"type": "a-record-type-from-a-later-version", "uuid": uuid})
        else:
            add(
                _envelope(
                    "user", uuid, parent, {"role": "user", "content": _text(rng, 6)}, isMeta=True
                )
            )
        parent = uuid
    return out[:count]


def _import(client: adapters.ControlClient, path: Path) -> dict[str, int]:
    totals = {"lines": 0, "records": 0, "stored": 0, "duplicates": 0, "steps": 0}
    while True:
        answer = client.call("import_transcript", {"agent": "claude-code", "path": str(path)})
        for name in ("lines", "records", "stored", "duplicates"):
            totals[name] += answer[name]
        totals["steps"] += 1
        if answer["done"]:
            return totals


def import_figure(home: Path, *, lines: int = LINES) -> tuple[bool, str]:
    """Import a generated ``lines``-line transcript through the daemon of ``home`` (which must be
    running); prints the figures and answers ``(target met, one-line detail)``."""
    folder = Path(tempfile.mkdtemp(prefix="bhi-", dir="/tmp"))
    try:
        path = folder / f"{SESSION}.jsonl"
        path.write_bytes(b"".join(transcript_lines(lines)))
        size = path.stat().st_size
        client = adapters.ControlClient(home / "scribe.sock", timeout=CALL_TIMEOUT)
        started = time.perf_counter()
        first = _import(client, path)
        elapsed = time.perf_counter() - started
        started = time.perf_counter()
        second = _import(client, path)
        again = time.perf_counter() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rate = first["lines"] / elapsed
    print(
        f"  import: {first['lines']:,} lines ({size / 1e6:.1f} MB), {first['records']:,} records, "
        f"{first['stored']:,} messages stored in {first['steps']} step(s): {elapsed:.2f} s, "
        f"{rate:,.0f} lines/s"
    )
    print(
        f"  again:  {second['lines']:,} lines read, {second['stored']} stored, "
        f"{again * 1000:.1f} ms"
    )
    ok = rate >= TARGET and second["stored"] == 0 and first["lines"] == lines
    detail = f"{rate:,.0f} lines/s ({first['lines']:,} lines in {elapsed:.2f} s)"
    print(
        f"  {'PASS' if ok else 'FAIL'}  import of a {lines:,}-line transcript >= 2,000 lines/s: {detail}"
    )
    return ok, detail


@contextlib.contextmanager
def _scribe_serve(home: Path, env: dict[str, str]) -> Iterator[None]:
    process = subprocess.Popen(
        [str(SCRIBE), "serve", "--no-session", "--no-dashboard", "--feed-port", "0"],
        env=env, cwd=home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Try:"):
                break
        if not lines or not lines[-1].startswith("Try:"):
            raise SystemExit("scribe serve did not start:\n" + "".join(lines))
        yield
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        process.stdout.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=LINES, help="transcript lines (10,000)")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 whatever the verdict")
    options = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bhi-home-", dir="/tmp"))
    home.chmod(0o700)
    env = {**os.environ, "SCRIBE_HOME": str(home)}
    print(f"transcript import through scribe serve: {sys.executable}, {os.cpu_count()} CPUs")
    try:
        with _scribe_serve(home, env):
            ok, _ = import_figure(home, lines=options.lines)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0 if options.no_fail or ok else 1


if __name__ == "__main__":
    sys.exit(main())
