"""Engine core benchmark (issue 2): sessions against bare trio nurseries, PriorityLimiter against
trio.CapacityLimiter, and the memory of an idle session.

Run it as ``.venv/bin/python bench/core.py`` (full run) or with ``--quick`` (small N, for CI). Each figure
is measured side by side in one process: the engine repetition and the baseline repetition alternate
(their order flips every repetition, so slow drift on a shared machine hits both sides alike), each
repetition is its own ``trio.run``, and the figure reported is the median over the repetitions of the
per-repetition ratio. Exit status 0 only if every target passes (``--no-fail``: always 0).

Verdicts use the CPU time of the trio thread by default (``--clock wall`` for wall-clock time): other
processes on a shared 2-core machine stretch wall-clock time but not CPU time, and nothing measured here
sleeps or waits on I/O. A run that does block anyway (a voluntary context switch, counted with
getrusage) is counted by its wall-clock time instead, so an engine that sleeps cannot look fast. The
cyclic garbage collector is collected, then switched off during each measured run (``--gc`` leaves it
on), so a full collection over whatever else is alive does not blur the ratio.

Figures and targets:
    (a) open and close N sessions, each running one task that does one checkpoint, against N bare
        nurseries doing the same; sequential shape (one node open at a time): <= 3x.
        The concurrent shape (all N nodes open at once) is printed too, for information.
    (b) cancel N sessions, each blocked in ``sleep_forever`` (the owner of each waits in
        ``session.wait()`` inside its ``open_session`` block), against N bare nurseries blocked the same
        way under their own cancel scopes; time from issuing the cancels until every node is final and
        its owner saw it: <= 2x.
    (c) PriorityLimiter acquire/release throughput under contention (tasks x rounds on capacity 4,
        mixed priorities, each holding its slot over one checkpoint) against trio.CapacityLimiter: >= 0.5x.
    (d) memory per idle session (tracemalloc, N started sessions each with one idle task): <= 8 KiB.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio
import trio.testing

import engine

_T = TypeVar("_T")
_RUSAGE_THREAD: int = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
_PRIORITIES = (engine.Priority.HIGH, engine.Priority.MEDIUM, engine.Priority.LOW)


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work one run does."""

    sessions: int
    limiter_tasks: int
    limiter_rounds: int
    limiter_capacity: int
    memory_sessions: int
    repetitions: int


FULL = Sizes(10_000, 100, 200, 4, 10_000, 7)
QUICK = Sizes(1_000, 50, 40, 4, 1_000, 5)


class Timing(NamedTuple):
    """Wall-clock and CPU seconds of one timed section, and how often the thread blocked in it."""

    wall: float
    cpu: float
    blocked: int  # voluntary context switches: the thread slept or waited (nothing here should)


def _voluntary_switches() -> int:
    return resource.getrusage(_RUSAGE_THREAD).ru_nvcsw


class _Stopwatch:
    """Times a section in wall-clock seconds and in CPU seconds of the calling thread."""

    __slots__ = ("_blocked", "_cpu", "_wall", "timing")

    def __init__(self) -> None:
        self._wall = 0.0
        self._cpu = 0.0
        self._blocked = 0
        self.timing = Timing(0.0, 0.0, 0)

    def start(self) -> None:
        self._blocked = _voluntary_switches()
        self._wall = time.perf_counter()
        self._cpu = time.thread_time()

    def stop(self) -> None:
        cpu = time.thread_time() - self._cpu
        wall = time.perf_counter() - self._wall
        self.timing = Timing(wall, cpu, _voluntary_switches() - self._blocked)


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure and its verdict."""

    label: str
    detail: str
    value: float
    unit: str
    target: str
    passed: bool | None  # None: informational, no target


# -- workloads -----------------------------------------------------------------------------------


async def _one_checkpoint() -> None:
    await trio.lowlevel.checkpoint()


def _engine_config() -> engine.EngineConfig:
    # No history of finished sessions: the bench measures the session tree, not the lookup table.
    return engine.EngineConfig(finished_history=0)


def open_close_sequential_engine(n: int) -> Timing:
    """Seconds to open and close ``n`` sessions one after the other, each running one task."""
    watch = _Stopwatch()

    async def main() -> None:
        async with engine.open_engine(_engine_config()) as eng:
            watch.start()
            for _ in range(n):
                async with eng.open_session("bench") as session:
                    session.start_soon(_one_checkpoint)
            watch.stop()

    trio.run(main)
    return watch.timing


def open_close_sequential_bare(n: int) -> Timing:
    """Seconds to open and close ``n`` bare nurseries one after the other, each running one task."""
    watch = _Stopwatch()

    async def main() -> None:
        watch.start()
        for _ in range(n):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_one_checkpoint)
        watch.stop()

    trio.run(main)
    return watch.timing


def open_close_concurrent_engine(n: int) -> Timing:
    """Seconds for ``n`` tasks, all started at once, each to open and close one session running one task."""
    watch = _Stopwatch()

    async def node(eng: engine.Engine) -> None:
        async with eng.open_session("bench") as session:
            session.start_soon(_one_checkpoint)

    async def main() -> None:
        async with engine.open_engine(_engine_config()) as eng:
            watch.start()
            async with trio.open_nursery() as outer:
                for _ in range(n):
                    outer.start_soon(node, eng)
            watch.stop()

    trio.run(main)
    return watch.timing


def open_close_concurrent_bare(n: int) -> Timing:
    """Seconds for ``n`` tasks, all started at once, each to open and close one bare nursery running one
    task."""
    watch = _Stopwatch()

    async def node() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_one_checkpoint)

    async def main() -> None:
        watch.start()
        async with trio.open_nursery() as outer:
            for _ in range(n):
                outer.start_soon(node)
        watch.stop()

    trio.run(main)
    return watch.timing


class _Countdown:
    """Sets ``done`` when ``count`` reaches zero."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.done = trio.Event()

    def tick(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.done.set()


def cancel_blocked_engine(n: int) -> Timing:
    """Seconds from cancelling ``n`` sessions, each blocked in one ``sleep_forever`` task, until all are
    final and their owners have seen it."""
    watch = _Stopwatch()

    async def main() -> None:
        sessions: list[engine.Session] = []
        countdown = _Countdown(n)

        async def node(eng: engine.Engine) -> None:
            async with eng.open_session("bench") as session:
                sessions.append(session)
                session.start_soon(trio.sleep_forever)
                await session.wait()
            countdown.tick()

        async with engine.open_engine(_engine_config()) as eng, trio.open_nursery() as outer:
            for _ in range(n):
                outer.start_soon(node, eng)
            await trio.testing.wait_all_tasks_blocked()
            assert len(sessions) == n
            watch.start()
            for session in sessions:
                session.cancel()
            await countdown.done.wait()
            watch.stop()
            assert all(s.state is engine.SessionState.CANCELLED for s in sessions)

    trio.run(main)
    return watch.timing


def cancel_blocked_bare(n: int) -> Timing:
    """Seconds from cancelling ``n`` bare nurseries (each under its own cancel scope, each with one
    ``sleep_forever`` task) until all have exited and their owners have seen it."""
    watch = _Stopwatch()

    async def main() -> None:
        scopes: list[trio.CancelScope] = []
        countdown = _Countdown(n)

        async def node() -> None:
            with trio.CancelScope() as scope:
                scopes.append(scope)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(trio.sleep_forever)
            countdown.tick()

        async with trio.open_nursery() as outer:
            for _ in range(n):
                outer.start_soon(node)
            await trio.testing.wait_all_tasks_blocked()
            assert len(scopes) == n
            watch.start()
            for scope in scopes:
                scope.cancel()
            await countdown.done.wait()
            watch.stop()

    trio.run(main)
    return watch.timing


def limiter_priority(tasks: int, rounds: int, capacity: int) -> Timing:
    """Seconds for ``tasks`` tasks to each take and give back a PriorityLimiter slot ``rounds`` times."""
    watch = _Stopwatch()

    async def worker(limiter: engine.PriorityLimiter, priority: engine.Priority) -> None:
        for _ in range(rounds):
            async with limiter.acquire(priority):
                await trio.lowlevel.checkpoint()

    async def main() -> None:
        limiter = engine.PriorityLimiter(capacity)
        watch.start()
        async with trio.open_nursery() as nursery:
            for i in range(tasks):
                nursery.start_soon(worker, limiter, _PRIORITIES[i % 3])
        watch.stop()
        stats = limiter.statistics()
        assert stats.granted_total == tasks * rounds and stats.borrowed == 0, stats

    trio.run(main)
    return watch.timing


def limiter_trio(tasks: int, rounds: int, capacity: int) -> Timing:
    """Seconds for ``tasks`` tasks to each take and give back a trio.CapacityLimiter token ``rounds``
    times."""
    watch = _Stopwatch()

    async def worker(limiter: trio.CapacityLimiter) -> None:
        for _ in range(rounds):
            async with limiter:
                await trio.lowlevel.checkpoint()

    async def main() -> None:
        limiter = trio.CapacityLimiter(capacity)
        watch.start()
        async with trio.open_nursery() as nursery:
            for _ in range(tasks):
                nursery.start_soon(worker, limiter)
        watch.stop()

    trio.run(main)
    return watch.timing


def memory_engine(n: int) -> float:
    """Bytes traced by tracemalloc per started idle session (each with one ``sleep_forever`` task)."""
    per_node = 0.0

    async def main() -> None:
        nonlocal per_node
        async with engine.open_engine(_engine_config()) as eng:
            await trio.testing.wait_all_tasks_blocked()
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for _ in range(n):
                    session = await eng.start_session("bench")
                    session.start_soon(trio.sleep_forever)
                await trio.testing.wait_all_tasks_blocked()
                gc.collect()
                after = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
            assert len(eng.sessions()) == n
            per_node = (after - before) / n
            await eng.aclose(grace=0)

    trio.run(main)
    return per_node


def memory_bare(n: int) -> float:
    """Bytes traced by tracemalloc per bare node: a task holding a cancel scope and a nursery with one
    ``sleep_forever`` task."""
    per_node = 0.0

    async def node(scopes: list[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            scopes.append(scope)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever)

    async def main() -> None:
        nonlocal per_node
        scopes: list[trio.CancelScope] = []
        async with trio.open_nursery() as outer:
            await trio.testing.wait_all_tasks_blocked()
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for _ in range(n):
                    outer.start_soon(node, scopes)
                await trio.testing.wait_all_tasks_blocked()
                gc.collect()
                after = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
            per_node = (after - before) / n
            outer.cancel_scope.cancel()

    trio.run(main)
    return per_node


# -- measuring -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    """How the figures are measured."""

    sizes: Sizes
    clock: str  # "cpu" or "wall": which clock the verdicts use
    keep_gc: bool  # leave the cyclic garbage collector on during the measured runs


def _measure(
    candidate: Callable[[], _T], baseline: Callable[[], _T], opts: Options
) -> tuple[list[_T], list[_T]]:
    """Run both sides ``opts.sizes.repetitions`` times, interleaved, flipping which goes first."""
    cand: list[_T] = []
    base: list[_T] = []
    for rep in range(opts.sizes.repetitions):
        order = ((cand, candidate), (base, baseline))
        if rep % 2:
            order = order[::-1]
        for out, fn in order:
            gc.collect()
            if not opts.keep_gc:
                gc.disable()
            try:
                out.append(fn())
            finally:
                gc.enable()
    return cand, base


def _ratio(cand: list[float], base: list[float]) -> float:
    """Median of the per-repetition ratios candidate / baseline."""
    return statistics.median(c / b for c, b in zip(cand, base, strict=True))


def _pick(timings: list[Timing], clock: str) -> list[float]:
    """The chosen clock's readings; a CPU reading of a run that blocked (slept or waited, which would
    not show as CPU time) is replaced by its wall-clock reading."""
    return [t.cpu if clock == "cpu" and not t.blocked else t.wall for t in timings]


def _blocked_label(cand: list[Timing], base: list[Timing], clock: str) -> str:
    if clock == "cpu" and any(t.blocked for t in (*cand, *base)):
        return " (wall time for runs that blocked)"
    return ""


def _blocked_note(cand: list[Timing], base: list[Timing]) -> str:
    c = sum(1 for t in cand if t.blocked)
    b = sum(1 for t in base if t.blocked)
    if not (c or b):
        return ""
    return (
        f"\n    blocked (slept or waited) in {c} engine and {b} baseline repetitions of "
        f"{len(cand)}: those count by wall time"
    )


def _other(clock: str) -> str:
    return "wall" if clock == "cpu" else "cpu"


def _verdict(passed: bool | None) -> str:
    return "info" if passed is None else ("PASS" if passed else "FAIL")


def _slowdown_figure(
    label: str,
    what: str,
    cand: list[Timing],
    base: list[Timing],
    n: int,
    limit: float | None,
    opts: Options,
) -> Figure:
    """A figure "engine time / baseline time" (lower is better); ``limit`` None: information only."""
    c, b = _pick(cand, opts.clock), _pick(base, opts.clock)
    ratio = _ratio(c, b)
    other = _ratio(_pick(cand, _other(opts.clock)), _pick(base, _other(opts.clock)))
    detail = (
        f"{what}\n    {opts.clock} time{_blocked_label(cand, base, opts.clock)}: engine {_ms(c)} ({statistics.median(c) / n * 1e6:.1f} us/node), "
        f"bare {_ms(b)} ({statistics.median(b) / n * 1e6:.1f} us/node); "
        f"ratio by {_other(opts.clock)} time {other:.2f}x{_blocked_note(cand, base)}"
    )
    target = f"<= {limit:g}x" if limit is not None else "none (information)"
    return Figure(label, detail, ratio, "x", target, None if limit is None else ratio <= limit)


def _print_figure(fig: Figure) -> None:
    print(f"{fig.label}: {fig.detail}")
    print(f"    => {fig.value:.2f}{fig.unit}  target {fig.target}  {_verdict(fig.passed)}")


def run(opts: Options) -> list[Figure]:
    """Measure every figure and print it as it is done."""
    sizes = opts.sizes
    n = sizes.sessions
    figures: list[Figure] = []

    def emit(fig: Figure) -> None:
        figures.append(fig)
        _print_figure(fig)
        sys.stdout.flush()

    cand, base = _measure(
        lambda: open_close_sequential_engine(n), lambda: open_close_sequential_bare(n), opts
    )
    emit(
        _slowdown_figure(
            "(a) open/close, sequential shape",
            f"{n} sessions opened and closed one after the other (one node open at a time), each "
            f"running one checkpoint task, vs {n} bare nurseries the same way",
            cand,
            base,
            n,
            3.0,
            opts,
        )
    )
    cand, base = _measure(
        lambda: open_close_concurrent_engine(n), lambda: open_close_concurrent_bare(n), opts
    )
    emit(
        _slowdown_figure(
            "(a') open/close, concurrent shape",
            f"{n} tasks started at once, each opening and closing one session running one checkpoint "
            "task, vs the same with bare nurseries (the target applies to the sequential shape)",
            cand,
            base,
            n,
            None,
            opts,
        )
    )
    cand, base = _measure(lambda: cancel_blocked_engine(n), lambda: cancel_blocked_bare(n), opts)
    emit(
        _slowdown_figure(
            "(b) cancel blocked",
            f"{n} sessions, each blocked in one sleep_forever task, cancelled with session.cancel(), "
            f"vs {n} bare nurseries under their own cancel scopes; time from the first cancel until "
            "every owner saw its node final",
            cand,
            base,
            n,
            2.0,
            opts,
        )
    )
    t, r, cap = sizes.limiter_tasks, sizes.limiter_rounds, sizes.limiter_capacity
    cand, base = _measure(
        lambda: limiter_priority(t, r, cap), lambda: limiter_trio(t, r, cap), opts
    )
    c, b = _pick(cand, opts.clock), _pick(base, opts.clock)
    ratio = _ratio(b, c)
    other = _ratio(_pick(base, _other(opts.clock)), _pick(cand, _other(opts.clock)))
    emit(
        Figure(
            "(c) limiter throughput",
            f"{t} tasks x {r} acquisitions on capacity {cap}, priorities HIGH/MEDIUM/LOW in turn, "
            f"each slot held over one checkpoint\n    {opts.clock} time"
            f"{_blocked_label(cand, base, opts.clock)}: PriorityLimiter "
            f"{t * r / statistics.median(c):,.0f}/s, trio.CapacityLimiter "
            f"{t * r / statistics.median(b):,.0f}/s; ratio by {_other(opts.clock)} time {other:.2f}x"
            f"{_blocked_note(cand, base)}",
            ratio,
            "x",
            ">= 0.5x",
            ratio >= 0.5,
        )
    )
    m = sizes.memory_sessions
    mem_cand, mem_base = _measure(lambda: memory_engine(m), lambda: memory_bare(m), opts)
    per_session = statistics.median(mem_cand)
    emit(
        Figure(
            "(d) memory per idle session",
            f"tracemalloc over {m} started sessions, each with one sleep_forever task (min "
            f"{min(mem_cand) / 1024:.2f}, max {max(mem_cand) / 1024:.2f} KiB); a bare node (task + "
            f"cancel scope + nursery + one sleep_forever task) takes "
            f"{statistics.median(mem_base) / 1024:.2f} KiB",
            per_session / 1024,
            " KiB",
            "<= 8 KiB",
            per_session <= 8 * 1024,
        )
    )
    return figures


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:.0f} ms"


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the bench, print the verdict; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small N for a fast smoke run (CI)")
    parser.add_argument("--no-fail", action="store_true", help="exit 0 even if a target fails")
    parser.add_argument("--repetitions", type=int, default=None, help="repetitions (>= 5)")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="clock the verdicts use (default cpu: the trio thread's CPU time, which other "
        "processes on a shared machine do not inflate; nothing measured here sleeps or waits on I/O)",
    )
    parser.add_argument(
        "--gc",
        action="store_true",
        help="leave the cyclic garbage collector on during the measured runs (default: collect, "
        "then disable it, so a full collection over whatever else is alive does not blur the ratio)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.repetitions is not None:
        if args.repetitions < 5:
            parser.error("--repetitions must be >= 5")
        sizes = replace(sizes, repetitions=args.repetitions)
    opts = Options(sizes, args.clock, args.gc)
    print("Scribe engine core benchmark (issue 2)")
    print(
        f"machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), load average "
        f"{os.getloadavg()[0]:.1f}, {platform.python_implementation()} {platform.python_version()}, "
        f"trio {trio.__version__}, {platform.system()} {platform.machine()}"
    )
    print(
        f"mode: {'quick' if args.quick else 'full'}; {sizes.repetitions} repetitions per figure, "
        "engine and baseline interleaved (order flipped every repetition), each in its own "
        f"trio.run; verdicts on {opts.clock} time, ratio = median of the per-repetition ratios; "
        f"garbage collector {'on' if opts.keep_gc else 'off'} during measured runs"
    )
    print()
    started = time.perf_counter()
    figures = run(opts)
    failed = [f for f in figures if f.passed is False]
    gated = [f for f in figures if f.passed is not None]
    print()
    verdict = (
        f"all {len(gated)} targets met"
        if not failed
        else f"{len(failed)} of {len(gated)} targets missed: " + ", ".join(f.label for f in failed)
    )
    print(f"{verdict} (in {time.perf_counter() - started:.0f} s)")
    if failed and not args.no_fail:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
