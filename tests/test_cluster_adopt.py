"""The adoption policy (``adopt_orphans``) of daemons on one Debian PostgreSQL server: ``reachable``
takes over a killed daemon's session whose work tree is here, ``own`` takes back the sessions a
daemon lost while it was stalled past its lease, and ``off`` leaves them orphaned. Real daemon
processes, real git, a real server."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

from cluster_support import cluster, listed, orphaned, seqs
from daemon_support import wait_for


def wait_for_or_not(check: Callable[[], bool], seconds: float) -> bool:
    """Whether ``check()`` holds within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def _owned_by(listing: dict[str, dict[str, object]], sid: str, name: str) -> bool:
    s = listing[sid]
    daemon = s["daemon"]
    return s["state"] == "active" and isinstance(daemon, dict) and daemon["name"] == name


def test_reachable_adopts_a_killed_daemons_session_here(
    tmp_path: Path, fresh_debian_pg_url: str
) -> None:
    with cluster(tmp_path, fresh_debian_pg_url, ("alpha", "beta")) as (a, b):
        b.env["SCRIBE_ADOPT_ORPHANS"] = "reachable"
        a.start("--no-dashboard")
        b.start("--no-dashboard")
        sid_a = next(sid for sid, s in listed(b).items() if s["daemon"]["name"] == "alpha")
        a.kill()
        wait_for(lambda: _owned_by(listed(b), sid_a, "beta"), timeout=20)

        def files_after_adoption() -> bool:
            kinds = [(k, p.get("adopted_from")) for _, k, p in seqs(fresh_debian_pg_url, sid_a)]
            start = max(i for i, (k, by) in enumerate(kinds) if k == "session_start" and by)
            return any(k == "files" for k, _ in kinds[start:])

        # Work goes on in alpha's tree, captured by beta now (once its watcher is armed: the
        # adoption is listed a moment before).
        for n in range(20):
            (a.cwd / "app.py").write_text(f"a = {100 + n}\n")
            if wait_for_or_not(files_after_adoption, 1.0):
                break
        assert files_after_adoption()
        entries = seqs(fresh_debian_pg_url, sid_a)
        assert [seq for seq, _, _ in entries] == list(range(1, len(entries) + 1))
        adoptions = [
            p for _, kind, p in entries if kind == "session_start" and p.get("adopted_from")
        ]
        assert len(adoptions) == 1


def test_own_takes_back_what_a_stall_lost_and_off_leaves_it(
    tmp_path: Path, fresh_debian_pg_url: str
) -> None:
    with cluster(tmp_path, fresh_debian_pg_url, ("alpha", "beta")) as (a, b):
        a.env["SCRIBE_ADOPT_ORPHANS"] = "own"  # beta: off
        a.start("--no-dashboard")
        b.start("--no-dashboard")
        assert a.proc is not None
        by_name = {s["daemon"]["name"]: sid for sid, s in listed(b).items()}
        sid_a, sid_b = by_name["alpha"], by_name["beta"]
        a.proc.send_signal(signal.SIGSTOP)  # past its lease: beta marks its session orphaned
        try:
            wait_for(lambda: orphaned(b, sid_a), timeout=15)
        finally:
            a.proc.send_signal(signal.SIGCONT)
        # alpha comes back with a new generation and adopts its own session again
        wait_for(lambda: _owned_by(listed(b), sid_a, "alpha"), timeout=20)
        entries = seqs(fresh_debian_pg_url, sid_a)
        assert [seq for seq, _, _ in entries] == list(range(1, len(entries) + 1))
        assert entries[-1][1] == "session_start" and entries[-1][2]["adopted_from"]
        # beta's session was never alpha's: alpha's "own" leaves it to beta
        b.kill()
        wait_for(lambda: orphaned(a, sid_b), timeout=15)
        wait_for(lambda: orphaned(a, sid_b), timeout=5)  # and it stays so through a sweep
        assert listed(a)[sid_b]["state"] == "orphaned"
