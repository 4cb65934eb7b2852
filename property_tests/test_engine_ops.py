"""Random sequences of engine operations, replayed inside one trio run on a MockClock.

Hypothesis draws the operations and (through pytest-trio's registration of trio's scheduler RNG) the
order in which ready tasks run, so interleavings are fuzzed and every failure replays.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import trio
import trio.testing
from hypothesis import example, given
from hypothesis import strategies as st

import engine
from engine import EngineConfig, Priority, PriorityLimiter, ScribeError, SessionLimits, SessionState

AGING = 0.3
CAPACITY = 2

_prio = st.sampled_from(list(Priority))
_dur = st.integers(min_value=1, max_value=20).map(lambda n: n / 10)
_work = st.tuples(
    st.just("work"),
    st.integers(0, 20),
    st.sampled_from(["sleep", "fail", "limit", "limit", "limit"]),
    _dur,
)
_open = st.tuples(
    st.just("open"),
    _prio,
    st.one_of(st.none(), st.integers(0, 20)),
    st.sampled_from([None, None, None, 1, 2]),
)
_by_kind = {
    "open": _open,
    "work": _work,
    "cancel": st.tuples(
        st.just("cancel"), st.integers(0, 20), st.sampled_from([0.0, 0.5, 1.0, 3.0])
    ),
    "close": st.tuples(st.just("close"), st.integers(0, 20)),
    "pause": st.tuples(st.just("pause"), st.integers(0, 20)),
    "advance": st.tuples(st.just("advance"), _dur),
}
# work is drawn most often so that waiters of mixed priority pile up on the limiter
_op = st.sampled_from(
    [
        "open",
        "work",
        "work",
        "work",
        "work",
        "work",
        "cancel",
        "close",
        "pause",
        "advance",
        "advance",
    ]
).flatmap(lambda kind: _by_kind[kind])


@dataclass
class Waiter:
    session: engine.Session
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
    sessions: list[engine.Session] = field(default_factory=list)
    explained: set[str] = field(default_factory=set)
    waiters: list[Waiter] = field(default_factory=list)
    held: dict[str, int] = field(default_factory=dict)
    fired: set[str] = field(default_factory=set)
    paused: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    typed_errors: int = 0


def _subtree(s: engine.Session) -> list[engine.Session]:
    out = [s]
    for c in s.children:
        out.extend(_subtree(c))
    return out


async def _limited(world: World, limiter: PriorityLimiter, s: engine.Session, hold: float) -> None:
    arrival = trio.current_time()
    if s.state is SessionState.PAUSED:
        # admission waits for the resume; the limiter sees the waiter only then
        arrival = max(end for _, end in world.paused[s.id])
    w = Waiter(s, s.priority, arrival, s.limits.quota)
    world.waiters.append(w)
    try:
        async with s.admit(limiter):
            w.granted = trio.current_time()
            world.held[s.id] = world.held.get(s.id, 0) + 1
            try:
                await trio.sleep(hold)
            finally:
                world.held[s.id] -= 1
    except trio.Cancelled:
        if w.granted is None:
            w.cancelled = trio.current_time()
        raise


async def _fail_after(world: World, s: engine.Session, delay: float) -> None:
    await trio.sleep(delay)
    world.fired.add(s.id)
    raise RuntimeError("injected failure")


async def _apply(
    world: World,
    eng: engine.Engine,
    limiter: PriorityLimiter,
    bg: trio.Nursery,
    op: tuple[Any, ...],
) -> None:
    kind = op[0]
    if kind == "advance":
        await trio.sleep(op[1])
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
            else:
                s.start_soon(_limited, world, limiter, s, dur)
        elif kind == "cancel":
            world.explained.update(x.id for x in _subtree(s))
            s.cancel(op[2])
        elif kind == "close":
            world.explained.update(x.id for x in _subtree(s))
            bg.start_soon(s.close)
        elif kind == "pause":
            world.explained.add(s.id)
            if s.state is SessionState.ACTIVE:
                s.pause()
                now = trio.current_time()
                world.paused.setdefault(s.id, []).append((now, now + 0.7))
                bg.start_soon(_resume_later, s)
    except ScribeError:
        world.typed_errors += 1


async def _resume_later(s: engine.Session) -> None:
    await trio.sleep(0.7)
    s.resume()


def _check_step(world: World, limiter: PriorityLimiter) -> None:
    stats = limiter.statistics()
    assert 0 <= stats.borrowed <= max(CAPACITY, stats.capacity)
    assert stats.borrowed == sum(world.held.values())
    for s in world.sessions:
        if s.limits.quota is not None:
            assert world.held.get(s.id, 0) <= s.limits.quota
        # a session changes state only through an operation on it or its ancestors, or its own failure
        if s.id not in world.explained:
            assert s.state is SessionState.ACTIVE, (s, s.error)


def _check_admission_order(world: World) -> None:
    """Every grant went to the waiter with the smallest effective key among those then waiting
    (quota-limited and paused sessions aside); hence nobody is overtaken past its aging bound."""
    for g, w in itertools.permutations(world.waiters, 2):
        if g.granted is None or g.session is w.session:
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


@given(st.lists(_open, min_size=1, max_size=6), st.lists(_op, min_size=3, max_size=40))
@example(  # a LOW waiter older than its aging bound goes before a HIGH one that came later
    opens=[("open", Priority.LOW, None, None), ("open", Priority.HIGH, None, None)],
    more=[
        ("work", 1, "limit", 2.0),
        ("work", 1, "limit", 2.0),
        ("work", 0, "limit", 0.1),
        ("advance", 1.0),
        ("work", 1, "limit", 0.1),
    ],
)
def test_random_operations_keep_the_engine_consistent(
    opens: list[tuple[Any, ...]], more: list[tuple[Any, ...]]
) -> None:
    ops = opens + more

    async def main() -> None:
        world = World()
        limiter = PriorityLimiter(CAPACITY, aging_interval=AGING)
        transitions: dict[str, list[str]] = {}
        async with engine.open_engine(EngineConfig(shutdown_grace=1.0, cleanup_timeout=1.0)) as eng:
            async with eng.open_subscription(["session.state"], max_buffer=1_000_000) as sub:
                async with trio.open_nursery() as bg:
                    for op in ops:
                        await trio.sleep(0.0013)
                        await _apply(world, eng, limiter, bg, op)
                        _check_step(world, limiter)
                    await trio.sleep(5)
                    _check_step(world, limiter)
                    bg.cancel_scope.cancel()
                await eng.aclose()
                while True:
                    try:
                        ev = sub.receive_nowait()
                    except trio.WouldBlock:
                        break
                    assert ev.session_id is not None
                    transitions.setdefault(ev.session_id, []).append(ev.payload["state"])
        # after shutdown no session is non-final, every slot is back, nobody waits
        for s in world.sessions:
            assert s.state.is_final, s
            assert s.task_count == 0
        stats = limiter.statistics()
        assert stats.borrowed == 0 and stats.waiting == 0
        assert eng.statistics().live_sessions == 0
        # only transitions in the table occurred, and every session ended final
        for states in transitions.values():
            for a, b in itertools.pairwise(states):
                assert a == b or SessionState(b) in engine.TRANSITIONS[SessionState(a)], states
            assert SessionState(states[-1]).is_final
        # failures stayed inside their subtree: anyone never touched by an op or failure ended by shutdown
        for s in world.sessions:
            if s.id not in world.explained:
                assert s.state is SessionState.CANCELLED and s.error is None
        # a session whose task raised ended FAILED with that error, unless it was stopped first
        for s in world.sessions:
            if s.id in world.fired:
                assert s.state is SessionState.FAILED, s
                assert isinstance(s.error, RuntimeError)
        _check_admission_order(world)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
