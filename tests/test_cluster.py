"""Two daemons on one Debian PostgreSQL server, each watching its own clone: one view of every
session, owner leases (a killed daemon's sessions orphaned within its lease), adoption that goes on
with the same worklog, and fencing (a daemon stalled past its lease writes nothing to the sessions
it lost, and says so). Real daemon processes, real git, a real server."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from daemon_support import Daemon, wait_for
from git_repos import git, make_repo
from websockets.sync.client import ClientConnection, connect

import adapters

#: Seconds a daemon's lease holds in these tests (the default is 10).
LEASE = "1.5"


@pytest.fixture
def pair(tmp_path: Path, fresh_debian_pg_url: str) -> Iterator[tuple[Daemon, Daemon]]:
    daemons = []
    for n, name in enumerate(("alpha", "beta"), start=1):
        clone = make_repo(tmp_path / name / "work", files={"app.py": f"a = {n}\n"})
        git(clone, "checkout", "-q", "-b", f"feat/B-{n}-cluster")
        d = Daemon(tmp_path / name / "home", fresh_debian_pg_url, clone)
        d.env.update(
            {
                "SCRIBE_DAEMON_NAME": name,
                "SCRIBE_OWNER_LEASE": LEASE,
                "SCRIBE_EMBEDDER": "hashing",  # no model to load: quicker starts
                "COLUMNS": "300",
            }
        )
        daemons.append(d)
    try:
        yield daemons[0], daemons[1]
    finally:
        for d in daemons:
            if d.proc is not None:
                d.proc.send_signal(signal.SIGCONT)
            d.kill()


def _call(d: Daemon, op: str, **args: Any) -> Any:
    """One request on the daemon's control socket (the CLI's own client, without its start-up)."""
    return adapters.ControlClient(d.home / "scribe.sock", timeout=60).call(op, args)


def _listed(d: Daemon) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in _call(d, "list")["sessions"]}


def _seqs(url: str, sid: str) -> list[tuple[int, str, dict[str, Any]]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT seq, kind, payload FROM worklog_entries WHERE session_id = %s ORDER BY seq",
            (sid,),
        ).fetchall()
    return [(int(seq), kind, payload) for seq, kind, payload in rows]


def _orphaned(d: Daemon, sid: str) -> bool:
    return _listed(d)[sid]["state"] == "orphaned"


def test_two_daemons_share_one_view_leases_adoption_and_fencing(
    pair: tuple[Daemon, Daemon], fresh_debian_pg_url: str
) -> None:
    a, b = pair
    a.start("--no-dashboard")
    b.start("--no-dashboard")
    assert a.proc is not None and b.proc is not None
    # One view: each daemon lists both sessions, each with the daemon that owns it.
    for d in (a, b):
        listed = _listed(d)
        owners = {s["daemon"]["name"]: s for s in listed.values()}
        assert set(owners) == {"alpha", "beta"}
        assert owners["alpha"]["daemon"]["pid"] == a.proc.pid
        assert owners["beta"]["daemon"]["pid"] == b.proc.pid
        assert all(s["daemon"]["alive"] and s["state"] == "active" for s in listed.values())
    by_name = {s["daemon"]["name"]: sid for sid, s in _listed(a).items()}
    sid_a, sid_b = by_name["alpha"], by_name["beta"]
    table = a.run("list")
    assert table.returncode == 0 and f"beta@{os.uname().nodename}:{b.proc.pid}" in table.stdout

    # A feed client of A receives B's worklog entries in order, and B's session's state changes.
    status = _call(a, "status")
    with connect(f"{status['feed_url']}?token={status['token']}", open_timeout=30) as ws:
        for topic in (f"worklog:{sid_b}", "sessions"):
            ws.send(json.dumps({"type": "subscribe", "topic": topic}))
        for n in range(3):
            _call(b, "append", session=sid_b, text=f"beta {n}")
        got = _events(ws, f"worklog:{sid_b}", lambda got: len(_texts(got)) == 3)
        seqs = [e["data"]["seq"] for e in got]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and _texts(got) == [
            "beta 0",
            "beta 1",
            "beta 2",
        ]

        # B is killed: within its lease A marks its session orphaned, and says so on its feed.
        _call(b, "append", session=sid_b, text="written by beta")
        owner_b = _listed(a)[sid_b]["owner"]
        b.kill()
        states = _events(
            ws, "sessions", lambda got: any(e["data"]["state"] == "orphaned" for e in got)
        )
        assert states[-1]["data"]["id"] == sid_b and states[-1]["data"]["owner"] == owner_b

    # A adopts it, and the worklog goes on after B's last entry.
    wait_for(lambda: _orphaned(a, sid_b), timeout=15)
    assert not _listed(a)[sid_b]["daemon"]["alive"]
    adopted = a.json("adopt", sid_b)
    assert adopted["state"] == "active" and adopted["owner"] == _listed(a)[sid_a]["owner"]
    assert _listed(a)[sid_b]["daemon"]["name"] == "alpha"
    _call(a, "append", session=sid_b, text="written by alpha")
    (b.cwd / "app.py").write_text("a = 22\n")
    wait_for(lambda: any(k == "files" for _, k, _ in _seqs(fresh_debian_pg_url, sid_b)[2:]))
    entries = _seqs(fresh_debian_pg_url, sid_b)
    assert [seq for seq, _, _ in entries] == list(range(1, len(entries) + 1))
    kinds = [(k, p.get("text"), p.get("adopted_from")) for _, k, p in entries]
    assert [k for k in kinds if k[0] == "session_start" or k[1]][:6] == [
        ("session_start", None, None),
        *(("note", f"beta {n}", None) for n in range(3)),
        ("note", "written by beta", None),
        ("session_start", None, owner_b),
    ]
    assert ("note", "written by alpha", None) in kinds

    # A restarted B lists everything too, and cannot write to the session A adopted.
    b.start("--no-session", "--no-dashboard")
    assert set(_listed(b)) == {sid_a, sid_b}
    with pytest.raises(adapters.DaemonError, match="not captured by this daemon"):
        _call(b, "append", session=sid_b, text="beta again")

    # A stalls past its lease (SIGSTOP): B marks A's sessions orphaned and adopts A's own one. A
    # comes back: it says its lease expired and writes nothing more to either session.
    before = len(_seqs(fresh_debian_pg_url, sid_a))
    a.proc.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: _orphaned(b, sid_a) and _orphaned(b, sid_b), timeout=15)
        assert _call(b, "adopt", session=sid_a)["state"] == "active"
    finally:
        a.proc.send_signal(signal.SIGCONT)
    said = wait_for(lambda: _logged(a, "no longer owned by this daemon"), timeout=15)
    assert "had expired" in said
    with pytest.raises(adapters.DaemonError):
        _call(a, "append", session=sid_a, text="alpha after its lease")
    (a.cwd / "app.py").write_text("a = 11\n")
    wait_for(lambda: any(k == "files" for _, k, _ in _seqs(fresh_debian_pg_url, sid_a)[before:]))
    entries = _seqs(fresh_debian_pg_url, sid_a)
    assert [seq for seq, _, _ in entries] == list(range(1, len(entries) + 1))
    assert all(p.get("text") != "alpha after its lease" for _, _, p in entries)
    assert entries[before][1] == "session_start" and entries[before][2]["adopted_from"]
    assert _listed(b)[sid_a]["daemon"]["name"] == "beta"
    assert _listed(a)[sid_b]["state"] == "orphaned"  # nobody adopted it again


def _texts(events: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["payload"]["text"] for e in events if e["data"]["kind"] == "note"]


def _events(ws: ClientConnection, topic: str, enough: Any) -> list[dict[str, Any]]:
    """The events of ``topic`` the feed sends until ``enough(events)`` holds (at most 20 s)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while not enough(got):
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == "events":
            got.extend(e for e in message["events"] if e["topic"] == topic)
    return got


def _logged(d: Daemon, text: str) -> str | None:
    """What the daemon has logged, once it holds ``text`` (None: not yet)."""
    logged = "".join(p.read_text() for p in sorted((d.home / "logs").glob("*.log*")))
    return logged if text in logged else None
