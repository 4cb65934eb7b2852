"""The heuristic summarizer: incremental folding, classification of notes, final summaries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import InvalidArgumentError
from engine._ports._summarizer import Summarizer
from engine._ports._summary_record import Summary
from engine._ports._worklog_records import EntryKind, WorklogEntry
from engine._scribe._summary import HeuristicSummarizer, classify_note_line


def _e(seq: int, kind: EntryKind, **payload: object) -> WorklogEntry:
    return WorklogEntry("s", seq, kind, 1000.0 + seq, payload)


ENTRIES = [
    _e(1, EntryKind.SESSION_START, branch="feat/B-9", backlog_id="B-9", name="B-9"),
    _e(2, EntryKind.FILES, created=["a.py"], modified=["b.py"], deleted=[], moved=[]),
    _e(
        3,
        EntryKind.NOTE,
        text="Decision: keep the parser pure\n- [ ] write the docs\nidea: cache by hash",
    ),
    _e(
        4,
        EntryKind.FILES,
        created=[],
        modified=["a.py"],
        deleted=["old.py"],
        moved=[["x.py", "y.py"]],
    ),
    _e(
        5,
        EntryKind.COMMIT,
        hash="abcdef1234",
        subject="Write the docs",
        files=["a.py", "README.md"],
    ),
    _e(6, EntryKind.PUSH, branch="feat/B-9", upstream="origin/feat/B-9"),
    _e(7, EntryKind.NOTE, text="Next: ask for review\nDone: benchmarks"),
]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Decision: use trio", ("decisions", "use trio")),
        ("we decided to drop asyncio", ("decisions", "to drop asyncio")),
        ("- [ ] add tests", ("next_steps", "add tests")),
        ("* [x] add tests", ("progress", "add tests")),
        ("TODO: rename", ("next_steps", "rename")),
        ("Next step: release", ("next_steps", "release")),
        ("Fixed the flaky test", ("progress", "Fixed the flaky test")),
        ("Idea: a cache", ("key_ideas", "a cache")),
        ("The API is slow", ("key_ideas", "The API is slow")),
        ("   ", None),
    ],
)
def test_note_lines_are_classified(line: str, expected: tuple[str, str] | None) -> None:
    assert classify_note_line(line) == expected


async def test_summary_collects_every_list() -> None:
    s = await HeuristicSummarizer().summarize("s", None, ENTRIES)
    assert isinstance(HeuristicSummarizer(), Summarizer)
    assert s.version == 1 and s.last_seq == 7 and not s.final
    assert s.decisions == ("keep the parser pure",)
    assert s.key_ideas == ("cache by hash",)
    # the commit "Write the docs" completes the open item of the same name
    assert s.next_steps == ("ask for review",)
    assert s.progress == (
        "Committed abcdef12: Write the docs",
        "Pushed feat/B-9 to origin/feat/B-9",
        "benchmarks",
    )
    assert s.files_modified[0] == "a.py"
    assert set(s.files_modified) == {"a.py", "b.py", "old.py", "y.py", "README.md"}
    assert s.metadata["commits"] == 1 and s.metadata["notes"] == 2 and s.metadata["pushes"] == 1
    assert s.metadata["files_deleted"] == ["old.py"]
    assert s.metadata["backlog_id"] == "B-9" and s.metadata["branch"] == "feat/B-9"


async def test_folding_in_steps_equals_folding_at_once() -> None:
    h = HeuristicSummarizer()
    whole = h.fold("s", None, ENTRIES, now=5.0)
    step = None
    for i in range(0, len(ENTRIES), 2):
        step = h.fold("s", step, ENTRIES[i : i + 2], now=5.0)
    assert step is not None
    assert step.version == 4
    assert step.payload() == whole.payload()
    # entries already folded are not counted twice
    again = h.fold("s", step, ENTRIES, now=5.0)
    assert again.payload() == whole.payload()


@given(st.integers(min_value=1, max_value=len(ENTRIES) - 1))
def test_any_split_point_gives_the_same_summary(cut: int) -> None:
    h = HeuristicSummarizer()
    whole = h.fold("s", None, ENTRIES, now=1.0)
    first = h.fold("s", None, ENTRIES[:cut], now=1.0)
    assert h.fold("s", first, ENTRIES[cut:], now=1.0).payload() == whole.payload()


async def test_final_summary_records_the_end_and_suggests_a_commit() -> None:
    h = HeuristicSummarizer()
    entries = [
        _e(1, EntryKind.FILES, created=["a.py"], modified=[], deleted=[], moved=[]),
        _e(2, EntryKind.SESSION_STOP, reason="idle_timeout"),
    ]
    s = await h.summarize("s", None, entries, final=True)
    assert s.final and s.metadata["end_reason"] == "idle_timeout"
    assert s.next_steps == ("Commit the changed files",)


def test_lists_are_bounded() -> None:
    notes = [_e(i + 1, EntryKind.NOTE, text=f"Decision: choice {i}") for i in range(50)]
    files = [
        _e(100 + i, EntryKind.FILES, created=[f"f{i}.py"], modified=[], deleted=[], moved=[])
        for i in range(300)
    ]
    s = HeuristicSummarizer().fold("s", None, [*notes, *files])
    assert len(s.decisions) == 20 and s.decisions[-1] == "choice 49"
    assert len(s.files_modified) == 200


def test_summary_validation_and_round_trip() -> None:
    s = Summary("s", 3, 12.0, key_ideas=("a",), metadata={"last_seq": 9, "final": True})
    back = Summary.from_payload("s", 3, 12.0, s.payload())
    assert back == s and back.last_seq == 9 and back.final
    assert s.as_dict()["version"] == 3
    for bad in (
        {"version": 0},
        {"session_id": ""},
        {"key_ideas": "text"},
        {"decisions": (1,)},
        {"created_at": float("inf")},
    ):
        kwargs: dict[str, object] = {"session_id": "s", "version": 1, **bad}
        with pytest.raises(InvalidArgumentError):
            Summary(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        HeuristicSummarizer().fold("other", None, ENTRIES)
