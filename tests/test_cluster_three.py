"""Three daemons on one Debian PostgreSQL server of the test's own, each watching its own clone: a
feed client of A gets B's and C's worklog entries in order; every daemon lists every session; B
killed, C adopts its session and goes on with the same worklog, and B restarted writes nothing to
it; then the server is stopped and started again under the three for longer than their leases:
they all reconnect and keep their sessions, what C saw during the outage is stored, and A's feed
client gets it. Real daemon processes, real git, a real server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_support import call, cluster, events, events_by_topic, listed, orphaned, seqs, texts
from daemon_support import Daemon, wait_for
from debian_pg_support import DebianServer
from pg_support import create_database, running_debian_server
from websockets.sync.client import connect

import adapters

#: The daemons' lease: long enough for each to reconnect after the server's restart (default 10).
LEASE_SECONDS = "5"


@pytest.fixture
def server() -> Iterator[DebianServer]:
    """A server of this test's own: it stops and starts it."""
    with running_debian_server() as s:
        yield s


def _writable(d: Daemon, sid: str, text: str) -> bool:
    try:
        call(d, "append", session=sid, text=text)
    except Exception:
        return False
    return True


def test_three_daemons_one_view_takeover_and_a_database_restart(
    tmp_path: Path, server: DebianServer
) -> None:
    url = create_database(server.url())
    with cluster(tmp_path, url, ("alpha", "beta", "gamma"), lease=LEASE_SECONDS) as (a, b, c):
        for d in (a, b, c):
            d.start("--no-dashboard")
        by_name = {s["daemon"]["name"]: sid for sid, s in listed(a).items()}
        sid_a, sid_b, sid_c = by_name["alpha"], by_name["beta"], by_name["gamma"]
        for d in (a, b, c):  # one view
            seen = listed(d)
            assert set(seen) == {sid_a, sid_b, sid_c}
            assert {s["daemon"]["name"] for s in seen.values()} == {"alpha", "beta", "gamma"}
            table = d.run("list")
            assert table.returncode == 0
            assert all(f"{n}@" in table.stdout for n in ("alpha", "beta", "gamma"))

        status = call(a, "status")
        with connect(f"{status['feed_url']}?token={status['token']}", open_timeout=30) as ws:
            for topic in (f"worklog:{sid_b}", f"worklog:{sid_c}", "sessions"):
                ws.send(json.dumps({"type": "subscribe", "topic": topic}))
            for n in range(3):
                call(b, "append", session=sid_b, text=f"beta {n}")
                call(c, "append", session=sid_c, text=f"gamma {n}")
            pairs = ((f"worklog:{sid_b}", "beta"), (f"worklog:{sid_c}", "gamma"))
            by_topic = events_by_topic(
                ws, lambda got: all(len(texts(got.get(t, []))) >= 3 for t, _ in pairs)
            )
            for topic, name in pairs:
                got = by_topic[topic]
                numbers = [e["data"]["seq"] for e in got]
                assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
                assert texts(got)[:3] == [f"{name} {n}" for n in range(3)]

            # B is killed: A and C see its session orphaned within the lease; C adopts it.
            b.kill()
            wait_for(lambda: orphaned(a, sid_b) and orphaned(c, sid_b), timeout=15)
            assert call(c, "adopt", session=sid_b)["state"] == "active"
            call(c, "append", session=sid_b, text="gamma took over")
            got = events(ws, f"worklog:{sid_b}", lambda got: "gamma took over" in texts(got))
            assert texts(got)[-1] == "gamma took over"
            entries = seqs(url, sid_b)
            assert [seq for seq, _, _ in entries] == list(range(1, len(entries) + 1))
            # B back after its lease expired lists everything and writes nothing to it.
            b.start("--no-session", "--no-dashboard")
            assert set(listed(b)) == {sid_a, sid_b, sid_c}
            with pytest.raises(adapters.DaemonError, match="not captured by this daemon"):
                call(b, "append", session=sid_b, text="beta again")
            assert len(seqs(url, sid_b)) == len(entries)

            # The server goes away under the three daemons for longer than their leases, and
            # comes back: nobody could renew, so each lease runs again from the server's start and
            # every daemon keeps its sessions.
            server.stop("fast")
            (c.cwd / "app.py").write_text("a = 33\n")  # seen by C while the database is down
            time.sleep(float(LEASE_SECONDS) + 1.5)
            server.start()
            for d, sid in ((a, sid_a), (c, sid_c)):
                wait_for(lambda d=d, sid=sid: _writable(d, sid, "after the restart"), timeout=60)
            got = events(
                ws,
                f"worklog:{sid_c}",
                lambda got: (
                    any(e["data"]["kind"] == "files" for e in got)
                    and "after the restart" in texts(got)
                ),
            )
            files = [e for e in got if e["data"]["kind"] == "files"]
            assert "app.py" in json.dumps(files[-1]["data"]["payload"])
        assert {listed(a)[sid]["state"] for sid in (sid_a, sid_b, sid_c)} == {"active"}
        for d, sid in ((a, sid_a), (c, sid_c), (c, sid_b)):
            entries = seqs(url, sid)
            assert [seq for seq, _, _ in entries] == list(range(1, len(entries) + 1)), (d, sid)
        assert set(listed(a)) == set(listed(c)) == {sid_a, sid_b, sid_c}
