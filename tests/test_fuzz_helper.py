"""engine.testing's schedule fuzzing finds an interleaving bug in host-style session code and replays it
from the seed it prints."""

from __future__ import annotations

import re
import textwrap
from collections import Counter

import pytest
import trio
from hypothesis import given, settings

import engine
from engine.testing import Schedule, _fuzz, schedules


async def _claim(board: dict[str, str], who: str, *, lead: int, racy: bool) -> None:
    """Claim the review of a change unless someone has: a check, then (if racy) an await, then the act."""
    for _ in range(lead):
        await trio.lowlevel.checkpoint()
    if "review" in board:
        return
    if racy:
        await trio.lowlevel.checkpoint()  # e.g. the claim's record is written first
    board.setdefault("claims", "")
    board["claims"] += who[0]
    board["review"] = who


async def _two_reviewers(racy: bool) -> str:
    """Two sessions each start a task that claims the one review; exactly one claim may win."""
    board: dict[str, str] = {}
    async with engine.open_engine() as eng:
        async with eng.open_session("alice") as alice, eng.open_session("bob") as bob:
            alice.start_soon(lambda: _claim(board, "alice", lead=1, racy=racy))
            bob.start_soon(lambda: _claim(board, "bob", lead=2, racy=racy))
        assert alice.state is engine.SessionState.COMPLETED
        assert bob.state is engine.SessionState.COMPLETED
    assert len(board["claims"]) == 1, f"the review was claimed twice: {board['claims']}"
    return board["review"]


def _falsified_seed(exc: BaseException) -> int:
    notes = "\n".join(getattr(exc, "__notes__", ()))
    found = re.findall(r"Schedule\(seed=(\d+)\)", notes)
    assert found, notes
    return int(found[0])


def test_fuzzing_finds_the_race_and_its_seed_replays_it() -> None:
    @settings(max_examples=200, database=None, derandomize=True)
    @given(schedule=schedules())
    def claims_once(schedule: Schedule) -> None:
        schedule.run(_two_reviewers, True)

    with pytest.raises(AssertionError) as found:
        claims_once()
    assert "claimed twice" in str(found.value)
    seed = _falsified_seed(found.value)
    for _ in range(3):  # the printed seed fails the same way every time
        with pytest.raises(AssertionError) as again:
            Schedule(seed=seed).run(_two_reviewers, True)
        assert str(again.value) == str(found.value)


def test_the_race_depends_on_the_schedule() -> None:
    # some interleavings are fine: the failure above is the scheduler's doing, not the program's every run
    outcomes: Counter[str] = Counter()
    for seed in range(40):
        try:
            outcomes[Schedule(seed=seed).run(_two_reviewers, True)] += 1
        except AssertionError:
            outcomes["double"] += 1
    assert outcomes["double"] > 0
    assert outcomes["alice"] + outcomes["bob"] > 0


def test_same_seed_same_interleaving() -> None:
    for seed in range(20):
        first = _outcome(seed)
        assert all(_outcome(seed) == first for _ in range(3))


def _outcome(seed: int) -> str:
    try:
        return Schedule(seed=seed).run(_two_reviewers, True)
    except AssertionError as exc:
        return str(exc)


@settings(max_examples=100, database=None, derandomize=True)
@given(schedule=schedules())
def test_the_fixed_program_holds_under_every_schedule(schedule: Schedule) -> None:
    # without the await between check and act the claim is atomic: alice, one checkpoint ahead, wins
    assert schedule.run(_two_reviewers, False) == "alice"


def test_schedule_rejects_bad_seeds() -> None:
    with pytest.raises(TypeError):
        Schedule(seed=True)
    with pytest.raises(ValueError):
        Schedule(seed=-1)


def test_a_schedule_runs_on_a_jumping_mock_clock_by_default() -> None:
    async def sleeper() -> float:
        await trio.sleep(3600)  # the default MockClock jumps: no wall time passes
        return trio.current_time()

    assert Schedule(seed=7).run(sleeper) == pytest.approx(3600)

    async def inside() -> int:
        return 1

    assert trio.run(inside) == 1  # an ordinary run afterwards still works


def test_the_documented_example_finds_its_race() -> None:
    doc = _fuzz.__doc__ or ""
    block = doc.split("::\n", 1)[1].split("\nHypothesis reports", 1)[0]
    namespace: dict[str, object] = {}
    exec(compile(textwrap.dedent(block), "engine.testing example", "exec"), namespace)
    property_test, program = namespace["test_one_claim_wins"], namespace["two_reviewers"]
    assert callable(property_test) and callable(program)
    with pytest.raises(AssertionError, match="claimed twice") as found:
        settings(database=None, derandomize=True)(property_test)()
    with pytest.raises(AssertionError, match="claimed twice"):
        Schedule(seed=_falsified_seed(found.value)).run(program)
