"""A FIFO in a work tree, named in the chosen files of a role, against a real daemon subprocess: the
context answers at once with that file reported, other repositories are unaffected, and SIGTERM ends
the daemon within its bound."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fs_support import make_fifo, unblocking
from git_repos import git, make_repo
from test_cli_sessions import Daemon

#: Generous bound on a graceful shutdown (the daemon gives sessions 5 s, summaries 5 s).
SHUTDOWN_BOUND = 30.0


@pytest.fixture
def daemon(tmp_path: Path, fresh_pg_url: str) -> Iterator[Daemon]:
    d = Daemon(tmp_path / "home", fresh_pg_url, tmp_path)
    try:
        yield d
    finally:
        d.kill()


def test_a_fifo_in_the_work_tree_wedges_nothing(daemon: Daemon, tmp_path: Path) -> None:
    wedged = make_repo(tmp_path / "wedged", files={"app.py": "a = 1\n"})
    git(wedged, "checkout", "-q", "-b", "feat/B-7-fifo")
    # TODO.md is a chosen file of the coder role; more FIFOs are pinned than the shared gate has slots
    fifos = [make_fifo(wedged / "TODO.md")] + [make_fifo(wedged / f"f{i}.md") for i in range(5)]
    fine = make_repo(tmp_path / "fine", files={"app.py": "b = 1\n", "TODO.md": "- [ ] y\n"})
    daemon.start()
    pins = [a for i in range(5) for a in ("--file", f"f{i}.md")]
    with unblocking(*fifos):
        sid = daemon.json("start", "--repo", str(wedged), "--no-idle-timeout", *pins)["id"]
        other = daemon.json("start", "--repo", str(fine), "--no-idle-timeout")["id"]
        ctx = daemon.json("context", sid, "--role", "coder")
        files = ctx["sources"]["files"]
        assert files["status"] == "ok", files
        assert {f["path"]: f.get("error") for f in files["value"]} == {
            p.name: "not a regular file (a FIFO)" for p in fifos
        }
        assert all(s["status"] == "ok" for s in ctx["sources"].values()), ctx["sources"]
        table = daemon.run("context", sid, "--role", "coder")
        assert table.returncode == 0 and "not a regular file (a FIFO)" in table.stdout
        # the files source of another repository is not starved
        for _ in range(3):
            theirs = daemon.json("context", other, "--role", "coder")["sources"]["files"]
            assert theirs["status"] == "ok", theirs
            assert theirs["value"] == [{"path": "TODO.md", "text": "- [ ] y\n"}]
        assert daemon.proc is not None and daemon.proc.stdout is not None
        daemon.proc.send_signal(signal.SIGTERM)
        try:
            code = daemon.proc.wait(timeout=SHUTDOWN_BOUND)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the daemon did not stop within {SHUTDOWN_BOUND} s of SIGTERM")
    rest = daemon.proc.stdout.read()
    assert code == 0, rest
