"""Two daemons on one Debian PostgreSQL server, each watching its own clone: one view of every
session, owner leases (a killed daemon's sessions orphaned within its lease), adoption that goes on
with the same worklog, and fencing (a daemon stalled past its lease writes nothing to the sessions
it lost, and says so). Real daemon processes, real git, a real server."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_support import call, cluster, events, listed, logged, orphaned, seqs, texts
from daemon_support import Daemon, wait_for
from websockets.sync.client import connect

import adapters


@pytest.fixture
def pair(tmp_path: Path, fresh_debian_pg_url: str) -> Iterator[tuple[Daemon, Daemon]]:
    with cluster(tmp_path, fresh_debian_pg_url, ("alpha", "beta")) as (a, b):
        yield a, b


def test_two_daemons_share_one_view_leases_adoption_and_fencing(
    pair: tuple[Daemon, Daemon], fresh_debian_pg_url: str
) -> None:
    a, b = pair
    a.start("--no-dashboard")
    b.start("--no-dashboard")
    assert a.proc is not None and b.proc is not None
    # One view: each daemon lists both sessions, each with the daemon that owns it.
    for d in (a, b):
        seen = listed(d)
        owners = {s["daemon"]["name"]: s for s in seen.values()}
        assert set(owners) == {"alpha", "beta"}
        assert owners["alpha"]["daemon"]["pid"] == a.proc.pid
        assert owners["beta"]["daemon"]["pid"] == b.proc.pid
        assert all(s["daemon"]["alive"] and s["state"] == "active" for s in seen.values())
    by_name = {s["daemon"]["name"]: sid for sid, s in listed(a).items()}
    sid_a, sid_b = by_name["alpha"], by_name["beta"]
    table = a.run("list")
    assert table.returncode == 0 and f"beta@{os.uname().nodename}:{b.proc.pid}" in table.stdout

    # A feed client of A receives B's worklog entries in order, and B's session's state changes.
    status = call(a, "status")
    with connect(f"{status['feed_url']}?token={status['token']}", open_timeout=30) as ws:
        for topic in (f"worklog:{sid_b}", "sessions"):
            ws.send(json.dumps({"type": "subscribe", "topic": topic}))
        for n in range(3):
            call(b, "append", session=sid_b, text=f"beta {n}")
        got = events(ws, f"worklog:{sid_b}", lambda got: len(texts(got)) == 3)
        numbers = [e["data"]["seq"] for e in got]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) and texts(got) == [
            "beta 0",
            "beta 1",
            "beta 2",
        ]

        # B is killed: within its lease A marks its session orphaned, and says so on its feed.
        call(b, "append", session=sid_b, text="written by beta")
        owner_b = listed(a)[sid_b]["owner"]
        b.kill()
        states = events(
            ws, "sessions", lambda got: any(e["data"]["state"] == "orphaned" for e in got)
        )
        assert states[-1]["data"]["id"] == sid_b and states[-1]["data"]["owner"] == owner_b

    # A adopts it, and the worklog goes on after B's last entry.
    wait_for(lambda: orphaned(a, sid_b), timeout=15)
    assert not listed(a)[sid_b]["daemon"]["alive"]
    adopted = a.json("adopt", sid_b)
    assert adopted["state"] == "active" and adopted["owner"] == listed(a)[sid_a]["owner"]
    assert listed(a)[sid_b]["daemon"]["name"] == "alpha"
    call(a, "append", session=sid_b, text="written by alpha")
    (b.cwd / "app.py").write_text("a = 22\n")
    wait_for(lambda: any(k == "files" for _, k, _ in seqs(fresh_debian_pg_url, sid_b)[2:]))
    entries = seqs(fresh_debian_pg_url, sid_b)
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
    assert set(listed(b)) == {sid_a, sid_b}
    with pytest.raises(adapters.DaemonError, match="not captured by this daemon"):
        call(b, "append", session=sid_b, text="beta again")

    # A stalls past its lease (SIGSTOP): B marks A's sessions orphaned and adopts A's own one. A
    # comes back: it says its lease expired and writes nothing more to either session.
    before = len(seqs(fresh_debian_pg_url, sid_a))
    a.proc.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: orphaned(b, sid_a) and orphaned(b, sid_b), timeout=15)
        assert call(b, "adopt", session=sid_a)["state"] == "active"
    finally:
        a.proc.send_signal(signal.SIGCONT)
    said = wait_for(lambda: logged(a, "no longer owned by this daemon"), timeout=15)
    assert "had expired" in said
    with pytest.raises(adapters.DaemonError):
        call(a, "append", session=sid_a, text="alpha after its lease")
    (a.cwd / "app.py").write_text("a = 11\n")
    wait_for(lambda: any(k == "files" for _, k, _ in seqs(fresh_debian_pg_url, sid_a)[before:]))
    entries = seqs(fresh_debian_pg_url, sid_a)
    assert [seq for seq, _, _ in entries] == list(range(1, len(entries) + 1))
    assert all(p.get("text") != "alpha after its lease" for _, _, p in entries)
    assert entries[before][1] == "session_start" and entries[before][2]["adopted_from"]
    assert listed(b)[sid_a]["daemon"]["name"] == "beta"
    assert listed(a)[sid_b]["state"] == "orphaned"  # nobody adopted it again
