"""Monitoring benchmark (issue 16): what the metric history, the latency histograms and the alerts
cost the daemon.

Run it as ``.venv/bin/python -P bench/monitoring.py`` (``--quick`` for shorter rounds). Two
``scribe serve`` daemons run at once, side by side, on one PostgreSQL (an embedded server in a
temporary directory unless ``SCRIBE_DATABASE_URL`` is set; a database each), each with a session
on a repository of its own: one with ``monitoring`` on (the default: sampling every second into
the history and its minutes into the database, every call timed, the alert rules judged every
second), one with it off (the baseline). The same steady workload drives both from threads of
this process: a file written in the work tree every 100 ms (a worklog entry and a context refresh
each), a ``context`` call and a ``ping`` every 100 ms. Each round measures both daemons' CPU
(user + system of the daemon process, all threads, from ``/proc/<pid>/stat``) over the same
wall-clock window, so load on the machine weighs on both alike. Then both daemons are restarted
with the roles swapped (the same homes, repositories and databases), so what differs between the
two slots cancels out; the figures are medians over the rounds of both halves.

Target (issue 16): the daemon's CPU with monitoring on is less than 2% above the baseline's
(relative; the median over the rounds of the ratio of CPU per control call, as a loaded machine
may not keep both workloads at the same rate). Exit status 0 only if it passes (``--no-fail``: always 0).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import adapters

SCRIBE = Path(sys.executable).parent / "scribe"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
TICKS = os.sysconf("SC_CLK_TCK")
PERIOD = 0.1


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def make_repo(path: Path) -> None:
    path.mkdir(parents=True)
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, env=env, check=True)
    (path / "app.py").write_text("print('hello')\n")
    subprocess.run(["git", "add", "."], cwd=path, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "start"], cwd=path, env=env, check=True)


class Daemon:
    """``scribe serve`` on a home and a repository of its own."""

    def __init__(self, slot: str, root: Path, url: str, monitoring: bool) -> None:
        self.name = "on" if monitoring else "off"
        self.home = root / f"home-{slot}"
        self.repo = root / f"repo-{slot}"
        if not self.repo.exists():
            make_repo(self.repo)
        env = {
            **os.environ,
            **GIT_ENV,
            "SCRIBE_HOME": str(self.home),
            "SCRIBE_DATABASE_URL": url,
            "SCRIBE_MONITORING": "true" if monitoring else "false",
            "SCRIBE_EMBEDDER": "hashing",
            "XDG_CONFIG_HOME": str(root / "no-config"),
        }
        self.process = subprocess.Popen(
            [str(SCRIBE), "serve", "--repo", str(self.repo), "--dashboard-port", "0",
             "--feed-port", "0", "--idle-timeout", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("  session "):
                self.session = line.split()[1]
            if line.startswith("Try:"):
                break
        if not lines or not lines[-1].startswith("Try:"):
            self.stop()
            raise SystemExit(f"scribe serve ({slot}) did not start:\n" + "".join(lines))
        self.client = adapters.ControlClient(self.home / "scribe.sock", timeout=30)
        self.calls = 0
        self.writes = 0

    def work(self, stop: threading.Event) -> None:
        """The steady workload, until ``stop``: a file written, a context call and a ping every
        :data:`PERIOD` seconds."""
        n = 0
        next_at = time.monotonic()
        while not stop.is_set():
            n += 1
            (self.repo / f"file{n % 20}.py").write_text(f"value = {n}\n")
            self.writes += 1
            self.client.call("context", {"session": self.session, "role": "coder"})
            self.client.call("ping")
            self.calls += 2
            next_at += PERIOD
            stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def database(root: Path) -> Iterator[tuple[str, str]]:
    """Two database URLs on one server."""
    given = os.environ.get("SCRIBE_DATABASE_URL")
    if given:
        yield given, given
        return
    server = adapters.EmbeddedServer(root / "pgdata")
    server.start()
    try:
        server.create_database("bench_on")
        server.create_database("bench_off")
        yield server.url("bench_on"), server.url("bench_off")
    finally:
        server.stop("fast")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="shorter rounds")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5; quick 3)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per round (20; 8)")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 whatever the figures")
    parser.add_argument(
        "--idle", action="store_true", help="no workload: the per-second cost alone"
    )
    options = parser.parse_args()
    rounds = options.rounds or (3 if options.quick else 5)
    seconds = options.seconds or (8.0 if options.quick else 20.0)
    root = Path(tempfile.mkdtemp(prefix="scribe-bench-monitoring-"))
    figures: dict[str, list[float]] = {"on": [], "off": [], "on per call": [], "off per call": []}
    try:
        with database(root) as urls:
            for half, (first, second) in enumerate(((True, False), (False, True))):
                print(
                    f"half {half + 1}: slot a {'on' if first else 'off'}, b {'on' if second else 'off'}"
                )
                a = Daemon("a", root, urls[0], monitoring=first)
                try:
                    b = Daemon("b", root, urls[1], monitoring=second)
                except BaseException:
                    a.stop()
                    raise
                try:
                    on, off = (a, b) if first else (b, a)
                    measure(on, off, rounds, seconds, figures, idle=options.idle)
                finally:
                    a.stop()
                    b.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return report(figures, options.no_fail)


def measure(
    on: Daemon,
    off: Daemon,
    rounds: int,
    seconds: float,
    figures: dict[str, list[float]],
    *,
    idle: bool = False,
) -> None:
    stop = threading.Event()
    daemons = () if idle else (on, off)
    workers = [threading.Thread(target=d.work, args=(stop,), daemon=True) for d in daemons]
    for w in workers:
        w.start()
    try:
        time.sleep(3.0)  # warm up: caches filled, first minutes and sweeps done
        for r in range(rounds):
            before = {d.name: (cpu_seconds(d.process.pid), d.calls) for d in (on, off)}
            start = time.monotonic()
            time.sleep(seconds)
            wall = time.monotonic() - start
            for d in (on, off):
                cpu, calls = before[d.name]
                used = cpu_seconds(d.process.pid) - cpu
                figures[d.name].append(used / wall)
                figures[f"{d.name} per call"].append(used / max(1, d.calls - calls))
            print(
                f"  round {r + 1}: on {figures['on'][-1] * 100:.2f}% of a core,"
                f" off {figures['off'][-1] * 100:.2f}%"
                f" ({on.calls - before['on'][1]} and {off.calls - before['off'][1]} calls)"
            )
    finally:
        stop.set()
        for w in workers:
            w.join(30)


def report(figures: dict[str, list[float]], no_fail: bool) -> int:
    cpu_on, cpu_off = statistics.median(figures["on"]), statistics.median(figures["off"])
    per_on, per_off = (statistics.median(figures[f"{k} per call"]) for k in ("on", "off"))
    # per call: a loaded machine may not keep both workloads at the same rate
    pairs = zip(figures["on per call"], figures["off per call"], strict=True)
    ratios = [a / b - 1 for a, b in pairs if b > 0]
    overhead = statistics.median(ratios) if ratios else 0.0
    rounds = len(ratios)
    print(f"\nworkload: a file write, a context call and a ping every {PERIOD * 1000:.0f} ms each")
    print(f"  daemon CPU, monitoring on:  {cpu_on * 100:.2f}% of a core (median of {rounds})")
    print(f"  daemon CPU, monitoring off: {cpu_off * 100:.2f}% of a core (baseline)")
    print(f"  difference: {(cpu_on - cpu_off) * 100:+.2f} points of a core")
    print(f"  CPU per control call: on {per_on * 1000:.2f} ms, off {per_off * 1000:.2f} ms")
    ok = overhead < 0.02
    print(f"  overhead (median of the rounds' ratios): {overhead * 100:+.1f}%  target < 2%:"
          f" {'PASS' if ok else 'FAIL'}")  # fmt: skip
    return 0 if ok or no_fail else 1


if __name__ == "__main__":
    raise SystemExit(main())
