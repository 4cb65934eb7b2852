"""Random sequences of engine operations, replayed inside one trio run on a MockClock.

Hypothesis draws the operations and, through :func:`engine.testing.schedules`, the order in which ready
tasks run, so interleavings are fuzzed and every failure replays from its printed seed. Operations:
sessions (some children of others), work (sleeps, failures, admissions on a plain gate and on a gate
with a default quota, admissions that give up waiting), cancels with a grace period (of parents too),
graceful closes, pauses, shutdown (mid-run as well as at the end). Between operations the driver waits
for everything to settle, yields once, or goes straight on, so operations also land in the same
scheduling batch as the work they race with. Invariants are checked after each operation, at each
settled moment and at the end; ``scripts/mutate.py`` plants faults in the core to show they are caught.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import trio
from hypothesis import example, given
from hypothesis import strategies as st

import engine
from engine import EngineConfig, Priority, PriorityLimiter, ScribeError, SessionLimits, SessionState
from engine.testing import Schedule, schedules

AGING = 0.3
CAPACITIES = (2, 2)  # gate 0: plain; gate 1: every owner has a default quota of 1
GATE_QUOTA = (None, 1)
VIRTUAL_BOUND = 300.0  # virtual seconds: a run that needs more is stuck, and fails at once

_S = SessionState
_prio = st.sampled_from(list(Priority))
_dur = st.integers(min_value=1, max_value=20).map(lambda n: n / 10)
_gap = st.sampled_from(["settle", "settle", "yield", "yield", "none"])
_work = st.tuples(
    st.just("work"),
    st.integers(0, 20),
    st.sampled_from(
        ["sleep", "fail", *(["limit"] * 5), "limit1", "limit1", "burst1", "impatient"]
    ),
    _dur,
)
_open = st.tuples(
    st.just("open"),
    _prio,
    st.one_of(st.none(), st.integers(0, 20)),
    st.sampled_from([None, None, None, 1, 2]),
)
_child = st.tuples(st.just("open"), _prio, st.integers(0, 20), st.sampled_from([None, 1]))
_by_kind = {
    "open": _open,
    "child": _child,
    "work": _work,
    "cancel": st.tuples(
        st.just("cancel"), st.integers(0, 20), st.sampled_from([0.0, 0.0, 0.5, 1.0, 3.0])
    ),
    "close": st.tuples(st.just("close"), st.integers(0, 20)),
    "pause": st.tuples(st.just("pause"), st.integers(0, 20)),
    "advance": st.tuples(st.just("advance"), _dur),
}
# shutdown ends the run's useful part, so it is drawn once per run (half of them), at a drawn step
_shutdown = st.one_of(
    st.none(),
    st.tuples(
        st.integers(0, 40),
        st.sampled_from(["settle", "yield", "none"]),
        st.sampled_from([0.0, 0.5, 2.0]),
    ),
)
# work is drawn most often so that waiters of mixed priority pile up on the gates
_KINDS = ("open", "child", *(["work"] * 10), "cancel", "cancel", "close", "pause")
_kind = st.sampled_from([*_KINDS, "advance", "advance"])
_op = st.tuples(_gap, _kind.flatmap(lambda kind: _by_kind[kind]))


@dataclass
class Waiter:
    session: engine.Session
    gate: int
    priority: Priority
    arrival: float
    quota: int | None
    granted: float | None = None
    cancelled: float | None = None

    @property
    def key(self) -> float:
        return self.arrival + self.priority.value * AGING


@dataclass
class World:
    gates: tuple[PriorityLimiter, ...]
    sessions: list[engine.Session] = field(default_factory=list)
    explained: set[str] = field(default_factory=set)
    waiters: list[Waiter] = field(default_factory=list)
    held: dict[tuple[int, str], int] = field(default_factory=dict)
    fired: dict[str, float] = field(default_factory=dict)
    paused: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    shut_down: bool = False
    typed_errors: int = 0
    # broken invariants seen inside session tasks (an assertion there would only fail the session)
    violations: list[str] = field(default_factory=list)


def _subtree(s: engine.Session) -> list[engine.Session]:
    out = [s]
    for c in s.children:
        out.extend(_subtree(c))
    return out


def _quota(s: engine.Session, gate: int) -> int | None:
    return s.limits.quota if s.limits.quota is not None else GATE_QUOTA[gate]


async def _limited(
    world: World, s: engine.Session, gate: int, hold: float, patience: float | None
) -> None:
    arrival = trio.current_time()
    if s.state is _S.PAUSED:
        # admission waits for the resume; the gate sees the waiter only then
        arrival = max(end for _, end in world.paused[s.id])
    w = Waiter(s, gate, s.priority, arrival, _quota(s, gate))
    world.waiters.append(w)
    with trio.move_on_after(patience if patience is not None else float("inf")):
        try:
            async with s.admit(world.gates[gate]):
                w.granted = trio.current_time()
                key = (gate, s.id)
                world.held[key] = world.held.get(key, 0) + 1
                if w.quota is not None and world.held[key] > w.quota:
                    world.violations.append(
                        f"{s} holds {world.held[key]} > {w.quota} of gate {gate}"
                    )
                try:
                    await trio.sleep(hold)
                finally:
                    world.held[key] -= 1
        except trio.Cancelled:
            if w.granted is None:
                w.cancelled = trio.current_time()
            raise


async def _fail_after(world: World, s: engine.Session, delay: float) -> None:
    await trio.sleep(delay)
    world.fired[s.id] = trio.current_time()
    raise RuntimeError("injected failure")


async def _apply(world: World, eng: engine.Engine, bg: trio.Nursery, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "advance":
        await trio.sleep(op[1])
        return
    if kind == "shutdown":
        world.explained.update(s.id for s in world.sessions)
        world.shut_down = True
        await eng.aclose(grace=op[1])
        _check_shut_down(world, eng)
        return
    if kind == "open":
        _, prio, parent_idx, quota = op
        parent = None
        if parent_idx is not None and world.sessions:
            parent = world.sessions[parent_idx % len(world.sessions)]
        try:
            s = await eng.start_session(
                f"s{len(world.sessions)}",
                priority=prio,
                parent=parent,
                limits=SessionLimits(quota=quota),
            )
        except ScribeError:
            world.typed_errors += 1
            return
        world.sessions.append(s)
        if parent is not None and parent.id in world.explained:
            world.explained.add(s.id)
        return
    if not world.sessions:
        return
    s = world.sessions[op[1] % len(world.sessions)]
    try:
        if kind == "work":
            _, _, what, dur = op
            if what == "sleep":
                s.start_soon(trio.sleep, dur)
            elif what == "fail":
                world.explained.update(x.id for x in _subtree(s))
                s.start_soon(_fail_after, world, s, dur)
            elif what == "impatient":  # gives up waiting on the plain gate after dur
                s.start_soon(_limited, world, s, 0, 1.0, dur)
            elif what == "burst1":  # three admissions at once on the quota'd gate
                for _ in range(3):
                    s.start_soon(_limited, world, s, 1, dur, None)
            else:
                s.start_soon(_limited, world, s, 1 if what == "limit1" else 0, dur, None)
        elif kind == "cancel":
            subtree = _subtree(s)
            world.explained.update(x.id for x in subtree)
            s.cancel(op[2])
            # the stop reaches the whole subtree at once, children included
            for x in subtree:
                assert x.state is _S.STOPPING or x.state.is_final, (x, "after cancel of", s)
                assert x.stop_requested or x.state.is_final, x
        elif kind == "close":
            world.explained.update(x.id for x in _subtree(s))
            bg.start_soon(s.close)
        elif kind == "pause":
            world.explained.add(s.id)
            if s.state is _S.ACTIVE:
                s.pause()
                now = trio.current_time()
                world.paused.setdefault(s.id, []).append((now, now + 0.7))
                bg.start_soon(_resume_later, s)
    except ScribeError:
        world.typed_errors += 1


async def _resume_later(s: engine.Session) -> None:
    await trio.sleep(0.7)
    s.resume()


def _check_settled(world: World) -> None:
    """What holds whenever every task has run as far as it can at this moment."""
    assert not world.violations, world.violations
    now = trio.current_time()
    for g, gate in enumerate(world.gates):
        stats = gate.statistics()
        assert 0 <= stats.borrowed <= stats.capacity
        assert stats.borrowed == sum(n for (gi, _), n in world.held.items() if gi == g)
        # every waiter the gate counts is one that still waits (some of those wait for a resume)
        pending = sum(
            1 for w in world.waiters if w.gate == g and w.granted is None and w.cancelled is None
        )
        assert stats.waiting <= pending, (g, stats, pending)
    for s in world.sessions:
        for g in range(len(world.gates)):
            quota = _quota(s, g)
            if quota is not None:
                assert world.held.get((g, s.id), 0) <= quota, (s, g)
        # a session changes state only through an operation on it or its ancestors, or its own failure
        if s.id not in world.explained and not world.shut_down:
            assert s.state is _S.ACTIVE, (s, s.error)
        # a task that raised ends its session (and with it the session's subtree) at once
        fired = world.fired.get(s.id)
        if fired is not None and fired < now:
            assert s.state is _S.FAILED, (s, "raised at", fired)
        if s.state.is_final:
            assert s.task_count == 0 and not s.children, s
        # a session never outlives its parent
        if s.parent is not None and s.parent.state.is_final:
            assert s.state.is_final, (s, "outlived", s.parent)


def _check_shut_down(world: World, eng: engine.Engine) -> None:
    """What holds as soon as shutdown returns."""
    for s in world.sessions:
        assert s.state.is_final, (s, "after shutdown")
        assert s.task_count == 0, s
    for gate in world.gates:
        stats = gate.statistics()
        assert stats.borrowed == 0 and stats.waiting == 0, stats
    stats = eng.statistics()
    assert stats.live_sessions == 0 and stats.state == "closed", stats


def _check_admission_order(world: World) -> None:
    """Every grant on a gate went to the waiter with the smallest effective key among those then
    waiting there (quota-limited and paused sessions aside); so nobody is overtaken past its aging
    bound."""
    for g, w in itertools.permutations(world.waiters, 2):
        if g.granted is None or g.session is w.session or g.gate != w.gate:
            continue
        t = g.granted
        waiting_then = w.arrival < t and (w.granted is None or w.granted > t)
        if w.granted is None and w.cancelled is not None and w.cancelled <= t:
            waiting_then = False
        if not waiting_then or w.quota is not None or _paused_at(world, w.session, t):
            continue
        if g.arrival >= t:
            continue  # g took a free slot at arrival: nobody eligible was waiting
        assert not w.key < g.key, f"{g} overtook {w}"
        if g.arrival > w.arrival:
            assert g.arrival - w.arrival <= (w.priority - g.priority) * AGING + 1e-9


def _paused_at(world: World, s: engine.Session, t: float) -> bool:
    return any(a <= t <= b for a, b in world.paused.get(s.id, ()))


def _check_transitions(transitions: dict[str, list[str]]) -> None:
    """Only transitions in the table occurred, and every session ended final."""
    for states in transitions.values():
        for a, b in itertools.pairwise(states):
            assert a == b or SessionState(b) in engine.TRANSITIONS[SessionState(a)], states
        assert SessionState(states[-1]).is_final


def _check_end(world: World) -> None:
    # failures stayed inside their subtree: anyone never touched by an op or failure ended by shutdown
    for s in world.sessions:
        if s.id not in world.explained:
            assert s.state is _S.CANCELLED and s.error is None, s
    # a session whose task raised ended FAILED with that error, unless it was stopped first
    for s in world.sessions:
        if s.id in world.fired:
            assert s.state is _S.FAILED, s
            assert isinstance(s.error, RuntimeError)
    _check_admission_order(world)


async def _gap(kind: str) -> bool:
    """Wait before the next operation; True when everything has settled."""
    if kind == "settle":
        await trio.sleep(0.0013)
        return True
    if kind == "yield":
        await trio.lowlevel.checkpoint()
    return False


async def _scenario(ops: list[tuple[str, tuple[Any, ...]]]) -> None:
    world = World(
        tuple(
            PriorityLimiter(cap, aging_interval=AGING, default_quota=quota)
            for cap, quota in zip(CAPACITIES, GATE_QUOTA, strict=True)
        )
    )
    transitions: dict[str, list[str]] = {}
    with trio.fail_after(VIRTUAL_BOUND):
        async with engine.open_engine(EngineConfig(shutdown_grace=1.0, cleanup_timeout=1.0)) as eng:
            async with eng.open_subscription(["session.state"], max_buffer=1_000_000) as sub:
                async with trio.open_nursery() as bg:
                    for gap, op in ops:
                        if await _gap(gap):
                            _check_settled(world)
                        await _apply(world, eng, bg, op)
                    await trio.sleep(5)
                    _check_settled(world)
                    bg.cancel_scope.cancel()
                if not world.shut_down:
                    world.shut_down = True
                    await eng.aclose()
                _check_shut_down(world, eng)
                _check_settled(world)
                while True:
                    try:
                        ev = sub.receive_nowait()
                    except trio.WouldBlock:
                        break
                    assert ev.session_id is not None
                    transitions.setdefault(ev.session_id, []).append(ev.payload["state"])
    _check_transitions(transitions)
    _check_end(world)


def _settled(*ops: tuple[Any, ...]) -> list[tuple[str, tuple[Any, ...]]]:
    return [("settle", op) for op in ops]


@given(
    st.lists(_open.map(lambda op: ("settle", op)), min_size=1, max_size=6),
    st.lists(_op, min_size=5, max_size=40),
    _shutdown,
    schedules(),
)
@example(  # a LOW waiter older than its aging bound goes before a HIGH one that came later
    opens=_settled(("open", Priority.LOW, None, None), ("open", Priority.HIGH, None, None)),
    more=_settled(
        ("work", 1, "limit", 2.0),
        ("work", 1, "limit", 2.0),
        ("work", 0, "limit", 0.1),
        ("advance", 1.0),
        ("work", 1, "limit", 0.1),
    ),
    shutdown=None,
    schedule=Schedule(seed=0),
)
@example(  # a HIGH waiter that came shortly after a LOW one still goes first
    opens=_settled(("open", Priority.LOW, None, None), ("open", Priority.HIGH, None, None)),
    more=_settled(
        ("work", 0, "limit", 1.0),
        ("work", 0, "limit", 1.0),
        ("work", 0, "limit", 0.1),
        ("work", 1, "limit", 0.1),
        ("advance", 1.5),
    ),
    shutdown=None,
    schedule=Schedule(seed=0),
)
@example(  # a slot another owner gives back does not go to a waiter whose owner is at its quota
    opens=_settled(*[("open", Priority.MEDIUM, None, None)] * 3),
    more=_settled(
        ("work", 0, "limit1", 3.0),
        ("work", 1, "limit1", 1.0),
        ("work", 0, "limit1", 0.5),
        ("work", 2, "limit1", 0.5),
        ("advance", 1.2),
        ("advance", 0.1),
    ),
    shutdown=None,
    schedule=Schedule(seed=0),
)
@example(  # a cancel in the same batch as a fresh admission: the slot it took is given back
    opens=_settled(("open", Priority.MEDIUM, None, None), ("work", 0, "limit", 1.0)),
    more=[("yield", ("cancel", 0, 0.0)), ("settle", ("advance", 0.1))],
    shutdown=None,
    schedule=Schedule(seed=0),
)
@example(  # cancelling a parent with a grace period stops its child at once
    opens=_settled(("open", Priority.MEDIUM, None, None)),
    more=_settled(("open", Priority.MEDIUM, 0, None), ("cancel", 0, 1.0), ("advance", 0.1)),
    shutdown=None,
    schedule=Schedule(seed=0),
)
@example(  # a failing task ends its session (and the child) at once, not at shutdown
    opens=_settled(("open", Priority.MEDIUM, None, None)),
    more=_settled(("open", Priority.MEDIUM, 0, None), ("work", 0, "fail", 0.1), ("advance", 0.5)),
    shutdown=None,
    schedule=Schedule(seed=0),
)
@example(  # a paused session is stopped by shutdown like any other
    opens=_settled(("open", Priority.MEDIUM, None, None)),
    more=_settled(("pause", 0), ("shutdown", 0.5), ("advance", 0.1)),
    shutdown=None,
    schedule=Schedule(seed=0),
)
@example(  # one session's two admissions on the quota'd gate: the second waits for the first
    opens=_settled(("open", Priority.MEDIUM, None, None)),
    more=_settled(("work", 0, "limit1", 1.0), ("work", 0, "limit1", 1.0), ("advance", 0.5)),
    shutdown=None,
    schedule=Schedule(seed=0),
)
@example(  # a waiter that gives up takes nothing and leaves the queue
    opens=_settled(("open", Priority.MEDIUM, None, None)),
    more=_settled(
        ("work", 0, "limit", 2.0),
        ("work", 0, "limit", 2.0),
        ("work", 0, "impatient", 0.5),
        ("advance", 1.0),
        ("work", 0, "limit", 0.1),
    ),
    shutdown=None,
    schedule=Schedule(seed=0),
)
def test_random_operations_keep_the_engine_consistent(
    opens: list[tuple[str, tuple[Any, ...]]],
    more: list[tuple[str, tuple[Any, ...]]],
    shutdown: tuple[int, str, float] | None,
    schedule: Schedule,
) -> None:
    ops = opens + more
    if shutdown is not None:
        at, gap, grace = shutdown
        ops.insert(len(opens) + at % (len(more) + 1), (gap, ("shutdown", grace)))
    schedule.run(_scenario, ops)
