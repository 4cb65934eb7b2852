"""Plant known faults in the engine's core one at a time and see which tests catch them.

Each mutant is a text patch: a snippet of engine code and what replaces it. The snippet is searched in
every module under ``engine/_core/`` (so it survives modules being split or renamed) with each line's
leading whitespace ignored, and must occur exactly once; the replacement is indented like the match.
A snippet that is not found, or found twice, stops the script with an error: fix the snippet.

Every mutant is applied to a fresh copy of the work tree in a temporary directory, then the property
tests and, separately, the engine's unit tests run against the copy, each bounded by a timeout. The
result is a table: mutant, caught by property_tests (and after how many seconds), caught by tests/.

    python scripts/mutate.py                 # every mutant
    python scripts/mutate.py a b1            # only these
    python scripts/mutate.py --list          # the mutants and what they plant
    python scripts/mutate.py --baseline      # also run both suites on the unmutated tree first
    python scripts/mutate.py --generated-only --no-unit   # random search alone, no explicit examples

Run it with the project's interpreter (``.venv/bin/python scripts/mutate.py``); it uses the same one for
pytest. Exit status: 0 when the property tests catch every mutant selected, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = Path("engine") / "_core"
# the property tests of the engine's core (the adapters' ones, git and fs among them, test other code)
PROPERTY_TESTS = ["property_tests/test_engine_ops.py", "property_tests/test_singleflight_props.py"]
UNIT_TESTS = ["tests/test_session.py", "tests/test_limiter.py", "tests/test_engine.py"]
PER_TEST_TIMEOUT = 60  # seconds, pytest-timeout's per-test bound
SUITE_TIMEOUT = 300  # seconds, a backstop for a whole suite


@dataclass(frozen=True)
class Mutant:
    key: str
    fault: str
    snippet: str
    replacement: str


MUTANTS = [
    Mutant(
        "a",
        "a task error is recorded but does not end its session",
        """
        if self.error is None:
            self.error = exc
        self._scope.cancel()
        """,
        """
        if self.error is None:
            self.error = exc
        """,
    ),
    Mutant(
        "b",
        "a cancel does not reach child sessions",
        """
        self._request_stop()
        for child in tuple(self._children.values()):
            child.cancel(grace)
        """,
        """
        self._request_stop()
        """,
    ),
    Mutant(
        "c",
        "the limiter is FIFO (priority ignored)",
        """
        key = float(priority.value) if self._aging is None else now + priority.value * self._aging
        """,
        """
        key = now
        """,
    ),
    Mutant(
        "d1",
        "a cancelled waiter keeps its place in the queue (and is later handed a slot)",
        """
        def abort(_: object) -> trio.lowlevel.Abort:
            waiter.state = _CANCELLED
            self._forget(waiter)
        """,
        """
        def abort(_: object) -> trio.lowlevel.Abort:
            self._forget(waiter)
        """,
    ),
    Mutant(
        "d2",
        "a cancelled waiter is still counted as queued",
        """
        waiter.state = _CANCELLED
        self._forget(waiter)
        self._cancelled_total += 1
        """,
        """
        waiter.state = _CANCELLED
        self._cancelled_total += 1
        """,
    ),
    Mutant(
        "d3",
        "a slot taken at the moment of cancellation is kept (its token leaks)",
        """
        if self._try_take(owner, quota):
            try:
                await trio.lowlevel.cancel_shielded_checkpoint()
            except BaseException:
                self.release(owner)
                raise
            return
        """,
        """
        if self._try_take(owner, quota):
            await trio.lowlevel.checkpoint()
            return
        """,
    ),
    Mutant(
        "e1",
        "shutdown leaves paused sessions running",
        """
        if s.parent is None:
            s.cancel(g)
        """,
        """
        if s.parent is None and s.state.value != "paused":
            s.cancel(g)
        """,
    ),
    Mutant(
        "e2",
        "shutdown does not wait for the sessions to end",
        """
        if not self._sessions:
            self._sessions_done.set()
        await self._sessions_done.wait()
        """,
        """
        if not self._sessions:
            self._sessions_done.set()
        """,
    ),
    Mutant(
        "f1",
        "a quota is not enforced when a waiter is dispatched",
        """
        if waiter.quota is not None and held >= waiter.quota:
        """,
        """
        if False:
        """,
    ),
    Mutant(
        "f2",
        "a quota is not enforced when a free slot is taken at once",
        """
        if quota is not None and held >= quota:
            return False
        """,
        """
        pass
        """,
    ),
]


class SnippetError(Exception):
    pass


def _block(text: str) -> list[str]:
    return textwrap.dedent(text).strip("\n").splitlines()


def _find(lines: list[str], want: list[str]) -> list[int]:
    """Start indexes where ``want`` occurs in ``lines``, comparing stripped lines."""
    stripped = [line.strip() for line in lines]
    target = [w.strip() for w in want]
    n = len(target)
    return [i for i in range(len(stripped) - n + 1) if stripped[i : i + n] == target]


def apply(tree: Path, mutant: Mutant) -> Path:
    """Plant ``mutant`` in the copy at ``tree``; return the file it changed.

    Raises:
        SnippetError: the snippet occurs nowhere, or more than once, under engine/_core/.
    """
    want = _block(mutant.snippet)
    hits: list[tuple[Path, list[str], int]] = []
    for path in sorted((tree / CORE).rglob("*.py")):
        lines = path.read_text().splitlines(keepends=True)
        for i in _find(lines, want):
            hits.append((path, lines, i))
    if len(hits) != 1:
        where = ", ".join(f"{p.relative_to(tree)}:{i + 1}" for p, _, i in hits) or "nowhere"
        raise SnippetError(
            f"mutant {mutant.key}: the snippet must occur once under {CORE}/, found {where}:\n"
            + "\n".join(want)
        )
    path, lines, i = hits[0]
    first = lines[i]
    indent = first[: len(first) - len(first.lstrip())]
    new = [(indent + r if r.strip() else r).rstrip() + "\n" for r in _block(mutant.replacement)]
    lines[i : i + len(want)] = new
    path.write_text("".join(lines))
    return path


def _copy_tree(dest: Path) -> Path:
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
        ".hypothesis", "node_modules", "*.egg-info",
    )  # fmt: skip
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    return dest


@dataclass(frozen=True)
class Run:
    caught: bool
    seconds: float
    how: str  # "failed", "timeout", "passed", "error"
    by: str = ""  # the first test that failed


def _pytest(tree: Path, targets: list[str], profile: str = "mutate") -> Run:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    env["HYPOTHESIS_PROFILE"] = profile  # no shrinking: the time is the time to find it
    cmd = [
        sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
        f"--timeout={PER_TEST_TIMEOUT}", *targets,
    ]  # fmt: skip
    start = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return Run(True, time.monotonic() - start, "timeout")
    took = time.monotonic() - start
    if proc.returncode == 0:
        return Run(False, took, "passed")
    if proc.returncode == 1:
        timed_out = "+ Timeout +" in proc.stdout
        failed = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("FAILED ")]
        by = Path(failed[0].split("::")[0]).name if failed else ""
        return Run(True, took, "timeout" if timed_out else "failed", by)
    sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
    return Run(True, took, f"error (exit {proc.returncode})")


def _cell(run: Run) -> str:
    if not run.caught:
        return f"no ({run.seconds:.1f}s)"
    suffix = "" if run.how == "failed" else f", {run.how}"
    by = f" {run.by}" if run.by else ""
    return f"yes ({run.seconds:.1f}s{suffix}){by}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("keys", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--baseline", action="store_true", help="run the unmutated tree first")
    parser.add_argument("--no-unit", action="store_true", help="skip the tests/ column")
    parser.add_argument(
        "--generated-only",
        action="store_true",
        help="property tests without their explicit examples (random search alone)",
    )
    args = parser.parse_args(argv)
    if args.list:
        for m in MUTANTS:
            print(f"{m.key:4} {m.fault}")
        return 0
    known = {m.key: m for m in MUTANTS}
    unknown = [k for k in args.keys if k not in known]
    if unknown:
        parser.error(f"unknown mutants: {', '.join(unknown)}")
    chosen = [known[k] for k in args.keys] if args.keys else MUTANTS
    profile = "mutate-generated" if args.generated_only else "mutate"
    rows: list[tuple[str, str, str, str]] = []
    survivors = 0
    with tempfile.TemporaryDirectory(prefix="scribe-mutants-") as tmp:
        if args.baseline:
            base = _copy_tree(Path(tmp) / "baseline")
            prop = _pytest(base, PROPERTY_TESTS, profile)
            unit = _pytest(base, UNIT_TESTS)
            if prop.caught or unit.caught:
                print(f"the unmutated tree fails: property {prop.how}, tests {unit.how}")
                return 2
            rows.append(("-", "no mutant (both suites must pass)", _cell(prop), _cell(unit)))
        # check every snippet before running anything, so a stale one fails at once
        for m in chosen:
            probe = _copy_tree(Path(tmp) / f"probe-{m.key}")
            apply(probe, m)
            shutil.rmtree(probe)
        for m in chosen:
            tree = _copy_tree(Path(tmp) / f"mutant-{m.key}")
            changed = apply(tree, m)
            print(f"mutant {m.key}: {m.fault} ({changed.relative_to(tree)})", flush=True)
            prop = _pytest(tree, PROPERTY_TESTS, profile)
            unit = Run(False, 0.0, "skipped") if args.no_unit else _pytest(tree, UNIT_TESTS)
            survivors += not prop.caught
            rows.append((m.key, m.fault, _cell(prop), "-" if args.no_unit else _cell(unit)))
            shutil.rmtree(tree)
    head = ("mutant", "fault", "caught by property_tests", "caught by tests/")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 1 if survivors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SnippetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
