"""The session lifecycle table, walked exhaustively."""

from __future__ import annotations

import itertools

import pytest

from engine import (
    FINAL_STATES,
    TRANSITIONS,
    IllegalTransitionError,
    ScribeError,
    SessionState,
    check_transition,
)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(SessionState, SessionState)))
def test_every_pair_is_allowed_or_refused(current: SessionState, target: SessionState) -> None:
    if target in TRANSITIONS[current]:
        assert check_transition(current, target) is target
    else:
        with pytest.raises(IllegalTransitionError) as info:
            check_transition(current, target)
        assert isinstance(info.value, ScribeError)
        assert info.value.current is current and info.value.target is target


def test_final_states_have_no_way_out() -> None:
    assert {SessionState.COMPLETED, SessionState.FAILED, SessionState.CANCELLED} == FINAL_STATES
    for state in FINAL_STATES:
        assert TRANSITIONS[state] == frozenset()
        assert state.is_final


def test_every_state_reaches_a_final_state() -> None:
    for start in SessionState:
        seen = {start}
        frontier = [start]
        while frontier:
            s = frontier.pop()
            for t in TRANSITIONS[s]:
                if t not in seen:
                    seen.add(t)
                    frontier.append(t)
        assert seen & FINAL_STATES or start in FINAL_STATES


def test_the_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(SessionState)


def test_state_module_imports_no_trio() -> None:
    import subprocess
    import sys

    code = "import sys, engine._core._state; print('trio' in sys.modules)"
    # engine/__init__ imports trio; load the table module on its own path to prove it needs none.
    code = (
        "import importlib.util, sys;"
        "spec = importlib.util.spec_from_file_location('st', 'engine/_core/_state.py',"
        " submodule_search_locations=None);"
        "import types; pkg = types.ModuleType('enginepkg'); pkg.__path__ = ['engine/_core'];"
        "sys.modules['enginepkg'] = pkg;"
        "spec = importlib.util.spec_from_file_location('enginepkg._state', 'engine/_core/_state.py');"
        "m = importlib.util.module_from_spec(spec); sys.modules['enginepkg._state'] = m;"
        "spec.loader.exec_module(m); print('trio' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=_root()
    )
    assert out.stdout.strip() == "False"


def _root() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent.parent)
