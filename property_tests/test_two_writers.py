"""Two daemons' processes updating one session of a shared PostgreSQL registry at once: no update is
lost (row versions), and a conflict is a typed error the writer retries (:class:`StoreConflictError`).
Hypothesis draws what each process writes; the two real processes interleave as the machine runs
them, released together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

import adapters
import engine

CHILD = Path(__file__).with_name("two_writers_child.py")
ROOT = Path(__file__).resolve().parent.parent
OPS = st.lists(st.sampled_from(["describe", "tag"]), min_size=1, max_size=8)


async def _orphaned_session(url: str) -> str:
    """A session whose owner has gone: either daemon may write it."""
    sid = f"two-writers-{uuid.uuid4().hex[:12]}"
    async with (
        adapters.open_database(url, pool_size=1) as db,
        adapters.open_session_registry(db, owner_id=f"gone-{sid}", lease=60) as registry,
    ):
        stored = await registry.register(engine.SessionRecord(id=sid, name=sid, state="active"))
        await registry.set_state(sid, engine.SessionState.ORPHANED, expected_version=stored.version)
    return sid


async def _record(url: str, sid: str) -> engine.SessionRecord:
    async with (
        adapters.open_database(url, pool_size=1, migrate=False) as db,
        adapters.open_session_registry(db, owner_id=f"reader-{sid}", lease=60) as registry,
    ):
        return await registry.get(sid)


@settings(max_examples=8)
@given(first=OPS, second=OPS)
def test_two_writer_processes_lose_no_update(
    pg_url: str, first: list[str], second: list[str]
) -> None:
    sid = trio.run(_orphaned_session, pg_url)
    before = trio.run(_record, pg_url, sid)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(CHILD), pg_url, sid, writer, ",".join(ops)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for writer, ops in (("w1", first), ("w2", second))
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        done = []
        for p in procs:
            out, _ = p.communicate(timeout=120)
            assert p.returncode == 0, out
            done.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    after = trio.run(_record, pg_url, sid)
    wanted = {
        op: sorted(f"{w}.{i}" for w, ops in (("w1", first), ("w2", second)) for i, o in enumerate(ops) if o == op)
        for op in ("describe", "tag")
    }  # fmt: skip
    # Every write is there exactly once: none overwrote another.
    assert sorted(after.description.split()) == wanted["describe"]
    assert sorted(after.tags) == wanted["tag"]
    # Each write moved the version by one; a conflict wrote nothing.
    assert after.version == before.version + sum(d["writes"] for d in done)
    assert sum(d["writes"] for d in done) == len(first) + len(second)
