"""Helpers of the cluster tests: control calls, listings, worklog rows and feed events of daemons
that share one database."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
from daemon_support import Daemon
from git_repos import git, make_repo
from websockets.sync.client import ClientConnection

import adapters

__all__ = [
    "LEASE",
    "call",
    "cluster",
    "events",
    "events_by_topic",
    "listed",
    "logged",
    "orphaned",
    "seqs",
    "texts",
]

#: Seconds a daemon's lease holds in these tests (the default is 10).
LEASE = "1.5"


@contextlib.contextmanager
def cluster(
    root: Path, url: str, names: Sequence[str], lease: str = LEASE
) -> Iterator[list[Daemon]]:
    """Daemons (not started) named ``names`` on the database ``url``, with leases of ``lease``
    seconds, each with its home and its own clone under ``root / name``; killed at the end (a
    stopped one continued first)."""
    daemons = []
    for n, name in enumerate(names, start=1):
        clone = make_repo(root / name / "work", files={"app.py": f"a = {n}\n"})
        git(clone, "checkout", "-q", "-b", f"feat/B-{n}-cluster")
        d = Daemon(root / name / "home", url, clone)
        d.env.update(
            {
                "SCRIBE_DAEMON_NAME": name,
                "SCRIBE_OWNER_LEASE": lease,
                "SCRIBE_ADOPT_ORPHANS": "off",  # adoption by hand, unless a test says otherwise
                "SCRIBE_EMBEDDER": "hashing",  # no model to load: quicker starts
                "COLUMNS": "300",
            }
        )
        daemons.append(d)
    try:
        yield daemons
    finally:
        for d in daemons:
            if d.proc is not None:
                d.proc.send_signal(signal.SIGCONT)
            d.kill()


def call(d: Daemon, op: str, **args: Any) -> Any:
    """One request on the daemon's control socket (the CLI's own client, without its start-up)."""
    return adapters.ControlClient(d.home / "scribe.sock", timeout=60).call(op, args)


def listed(d: Daemon) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in call(d, "list")["sessions"]}


def seqs(url: str, sid: str) -> list[tuple[int, str, dict[str, Any]]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT seq, kind, payload FROM worklog_entries WHERE session_id = %s ORDER BY seq",
            (sid,),
        ).fetchall()
    return [(int(seq), kind, payload) for seq, kind, payload in rows]


def orphaned(d: Daemon, sid: str) -> bool:
    return listed(d)[sid]["state"] == "orphaned"


def texts(events: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["payload"]["text"] for e in events if e["data"]["kind"] == "note"]


def events(ws: ClientConnection, topic: str, enough: Any) -> list[dict[str, Any]]:
    """The events of ``topic`` the feed sends until ``enough(events)`` holds (at most 20 s); the
    events of other topics are dropped."""
    return events_by_topic(ws, lambda got: enough(got.get(topic, []))).get(topic, [])


def events_by_topic(ws: ClientConnection, enough: Any) -> dict[str, list[dict[str, Any]]]:
    """The events the feed sends, by topic, until ``enough(by_topic)`` holds (at most 20 s)."""
    got: dict[str, list[dict[str, Any]]] = {}
    deadline = time.monotonic() + 20
    while not enough(got):
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == "events":
            for e in message["events"]:
                got.setdefault(e["topic"], []).append(e)
    return got


def logged(d: Daemon, text: str) -> str | None:
    """What the daemon has logged, once it holds ``text`` (None: not yet)."""
    logged = "".join(p.read_text() for p in sorted((d.home / "logs").glob("*.log*")))
    return logged if text in logged else None
