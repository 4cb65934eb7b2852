"""Worklog entries, path patterns, change folding, markdown rendering and the scribe's pure rules."""

from __future__ import annotations

import datetime as dt
import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import Change, ChangeBatch, ChangeKind, InvalidArgumentError
from engine._ports._summary_record import Summary
from engine._ports._worklog_records import (
    EndReason,
    EntryKind,
    FileChanges,
    WorklogEntry,
    check_note,
)
from engine._scribe._rules import (
    Aspect,
    EndRules,
    RepoState,
    backlog_id_from_branch,
    observe,
    read_batch,
)
from engine._scribe._worklog_filter import PathFilter, compile_pattern
from engine._scribe._worklog_markdown import render_markdown

# -- entries ---------------------------------------------------------------------------------------


def test_entry_round_trips_and_validates() -> None:
    e = WorklogEntry("s1", 3, "note", 1_700_000_000.5, {"text": "hi"})
    assert e.kind is EntryKind.NOTE
    assert WorklogEntry.from_dict(e.as_dict()) == e
    with pytest.raises(InvalidArgumentError):
        WorklogEntry("s1", 0, "note", 1.0, {})
    with pytest.raises(InvalidArgumentError):
        WorklogEntry("s1", 1, "nonsense", 1.0, {})
    with pytest.raises(InvalidArgumentError):
        WorklogEntry("", 1, "note", 1.0, {})
    with pytest.raises(InvalidArgumentError):
        WorklogEntry("s", 1, "note", float("nan"), {})
    with pytest.raises(InvalidArgumentError):
        WorklogEntry.from_dict({"seq": 1})


def test_entry_files_lists_touched_paths() -> None:
    files = FileChanges(("a.py",), ("b.py",), ("c.py",), (("d.py", "e.py"),))
    e = WorklogEntry("s", 1, EntryKind.FILES, 1.0, files.as_payload())
    assert e.files == ("a.py", "b.py", "c.py", "e.py")
    c = WorklogEntry("s", 2, EntryKind.COMMIT, 1.0, {"files": ["x"]})
    assert c.files == ("x",)


def test_notes_are_checked() -> None:
    assert check_note("  decided: use trio  ") == "decided: use trio"
    for bad in ("", "   ", 5, "x" * 20_001, "a\x00b"):
        with pytest.raises(InvalidArgumentError):
            check_note(bad)


# -- folding ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ([("created", "a", None), ("modified", "a", None)], FileChanges(created=("a",))),
        ([("created", "a", None), ("deleted", "a", None)], FileChanges()),
        ([("deleted", "a", None), ("created", "a", None)], FileChanges(modified=("a",))),
        ([("modified", "a", None), ("modified", "a", None)], FileChanges(modified=("a",))),
        ([("moved", "b", "a")], FileChanges(moved=(("a", "b"),))),
        ([("created", "a", None), ("moved", "b", "a")], FileChanges(created=("b",))),
        ([("moved", "b", "a"), ("deleted", "b", None)], FileChanges(deleted=("a",))),
        ([("moved", "b", "a"), ("moved", "c", "b")], FileChanges(moved=(("a", "c"),))),
        ([("moved", "b", "a"), ("moved", "a", "b")], FileChanges(modified=("a",))),
        (
            [("modified", "z", None), ("deleted", "y", None)],
            FileChanges(modified=("z",), deleted=("y",)),
        ),
    ],
)
def test_fold_nets_out_changes(
    changes: list[tuple[str, str, str | None]], expected: FileChanges
) -> None:
    assert FileChanges.fold(changes) == expected


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["created", "modified", "deleted", "moved"]),
            st.sampled_from("abcd"),
            st.sampled_from("abcd"),
        ),
        max_size=12,
    )
)
def test_fold_never_lists_a_path_twice(ops: list[tuple[str, str, str]]) -> None:
    changes = [(k, p, (o if k == "moved" and o != p else None)) for k, p, o in ops]
    out = FileChanges.fold(changes)
    seen = [*out.created, *out.modified, *out.deleted, *(new for _, new in out.moved)]
    assert len(seen) == len(set(seen))
    assert out.count == len(out.created) + len(out.modified) + len(out.deleted) + len(out.moved)


# -- patterns --------------------------------------------------------------------------------------


def test_default_filter_keeps_source_docs_and_planning_files() -> None:
    f = PathFilter()
    for keep in (
        "src/app.py",
        "README.md",
        "docs/guide.rst",
        "backlog/B-12.md",
        "planning/PRD-login.md",
        "tasks/today.txt",
        "TASKS.md",
        "TODO",
        "Makefile",
        "web/ui/App.tsx",
    ):
        assert f.matches(keep), keep
    for drop in (
        ".git/HEAD",
        "node_modules/x/index.js",
        "a/node_modules/b.js",
        "src/__pycache__/m.cpython-311.pyc",
        ".venv/lib/site.py",
        "build/out.js",
        "photo.png",
        "notes.md~",
        ".scribe/worklog.md",
        "src/.#app.py",
        "",
    ):
        assert not f.matches(drop), drop


def test_pattern_semantics() -> None:
    assert compile_pattern("*.py").fullmatch("a/b/c.py")
    assert not compile_pattern("docs/*.md").fullmatch("x/docs/a.md")
    assert compile_pattern("docs/*.md").fullmatch("docs/a.md")
    assert not compile_pattern("docs/*.md").fullmatch("docs/sub/a.md")
    assert compile_pattern("docs/**/*.md").fullmatch("docs/sub/deep/a.md")
    assert compile_pattern("docs/**/*.md").fullmatch("docs/a.md")
    assert compile_pattern("/top.txt").fullmatch("top.txt")
    assert compile_pattern("build/").fullmatch("x/build/y/z.o")
    assert compile_pattern("a/build/").fullmatch("a/build/z.o")
    assert not compile_pattern("a/build/").fullmatch("b/a/build/z.o")
    assert compile_pattern("file?.[ch]").fullmatch("file1.c")
    assert not compile_pattern("file[!0-9].c").fullmatch("file1.c")
    assert compile_pattern("file[!0-9].c").fullmatch("filex.c")
    f = PathFilter(include=("*.py",), exclude=("tests/",))
    assert f.matches("src/a.py") and not f.matches("tests/test_a.py")
    assert f.with_exclude("src/").excluded("src/a.py")


@pytest.mark.parametrize("bad", ["", "   ", "/", 7, "x\x00"])
def test_bad_patterns_are_refused(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        compile_pattern(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        PathFilter(include="*.py")  # type: ignore[arg-type]


_name = st.text(alphabet="abc.xy_", min_size=1, max_size=6)


@given(st.text(alphabet="abc*?.x", min_size=1, max_size=6), _name)
def test_basename_patterns_agree_with_fnmatch(pattern: str, name: str) -> None:
    assert bool(compile_pattern(pattern).fullmatch(name)) == fnmatch.fnmatchcase(name, pattern)
    assert bool(compile_pattern(pattern).fullmatch(f"dir/{name}")) == fnmatch.fnmatchcase(
        name, pattern
    )


# -- backlog ids and end rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("branch", "expected"),
    [
        ("feat/B-1042-login", "B-1042"),
        ("b-7", "B-7"),
        ("fix/b-12_typo", "B-12"),
        ("main", None),
        ("AB-12", None),
        ("feat/B-", None),
        (None, None),
    ],
)
def test_backlog_id_from_branch(branch: str | None, expected: str | None) -> None:
    assert backlog_id_from_branch(branch) == expected


def test_backlog_pattern_is_configurable_and_checked() -> None:
    assert backlog_id_from_branch("feat/JIRA-5", r"JIRA-\d+") == "JIRA-5"
    with pytest.raises(InvalidArgumentError):
        backlog_id_from_branch("x", "(")


def test_end_rules_validate() -> None:
    for bad in (0, -1, float("inf"), True, "10"):
        with pytest.raises(InvalidArgumentError):
            EndRules(idle_timeout=bad)  # type: ignore[arg-type]
    assert EndRules(idle_timeout=None).idle_timeout is None


RULES = EndRules()


def test_branch_switch_ends_the_session() -> None:
    old = RepoState("feat/B-1", "a" * 40)
    obs = observe(old, RepoState("main", "a" * 40), RULES)
    assert obs.branch_switch == ("feat/B-1", "main") and obs.end is EndReason.BRANCH_SWITCH
    assert obs.head_moved is None
    off = observe(old, RepoState("main", "b" * 40), EndRules(on_branch_switch=False))
    assert off.branch_switch is not None and off.end is None


def test_commit_moves_head_without_ending() -> None:
    obs = observe(RepoState("main", "a"), RepoState("main", "b", clean=False), RULES)
    assert obs.head_moved == ("a", "b") and obs.end is None and not obs.pushed
    first = observe(RepoState("main", None), RepoState("main", "b"), RULES)
    assert first.head_moved == (None, "b")


def test_push_completed_ends_only_when_clean() -> None:
    ahead = RepoState("main", "b", "origin/main", 1, 0, clean=True)
    synced = RepoState("main", "b", "origin/main", 0, 0, clean=True)
    obs = observe(ahead, synced, RULES)
    assert obs.pushed and obs.end is EndReason.PUSH_COMPLETED
    dirty = RepoState("main", "b", "origin/main", 0, 0, clean=False)
    assert observe(ahead, dirty, RULES).pushed and observe(ahead, dirty, RULES).end is None
    new_upstream = observe(RepoState("main", "b"), synced, RULES)
    assert new_upstream.pushed and new_upstream.end is EndReason.PUSH_COMPLETED
    assert observe(ahead, synced, EndRules(on_push=False)).end is None


def test_pull_and_steady_state_are_not_pushes() -> None:
    behind = RepoState("main", "a", "origin/main", 0, 2)
    synced = RepoState("main", "b", "origin/main", 0, 0)
    assert not observe(behind, synced, RULES).pushed
    assert not observe(synced, synced, RULES).pushed
    assert observe(synced, synced, RULES) == observe(synced, synced, RULES)


def _batch(*changes: Change, rescan: bool = False) -> ChangeBatch:
    return ChangeBatch(tuple(changes), rescan=rescan)


def test_read_batch_splits_files_and_aspects() -> None:
    C, K = Change, ChangeKind
    b = _batch(
        C(K.MODIFIED, "src/a.py"),
        C(K.CREATED, "photo.png"),
        C(K.CREATED, "docs", is_dir=True),
        C(K.MOVED, "src/new.py", "src/old.py"),
        C(K.MOVED, "keep.md", "junk.bin"),
        C(K.MODIFIED, ".git/refs/heads/main"),
        C(K.MODIFIED, ".scribe/worklog.md"),
    )
    r = read_batch(b, PathFilter(), ignore={".scribe/worklog.md"})
    assert r.files == FileChanges(
        created=("keep.md",), modified=("src/a.py",), moved=(("src/old.py", "src/new.py"),)
    )
    assert r.aspects == {Aspect.TREE, Aspect.HEAD}
    assert r.git_paths == {"refs/heads/main"}
    assert ".scribe/worklog.md" not in r.tree_paths and "photo.png" in r.tree_paths


@pytest.mark.parametrize(
    ("path", "aspect"),
    [
        (".git/HEAD", Aspect.HEAD),
        (".git/packed-refs", Aspect.HEAD),
        (".git/refs/heads/feat/x", Aspect.HEAD),
        (".git/refs/remotes/origin/main", Aspect.UPSTREAM),
        (".git/index", Aspect.INDEX),
        (".git/objects/ab/cdef", None),
    ],
)
def test_git_paths_map_to_aspects(path: str, aspect: Aspect | None) -> None:
    r = read_batch(_batch(Change(ChangeKind.MODIFIED, path)), PathFilter())
    assert r.aspects == (frozenset() if aspect is None else {aspect})
    assert not r.files


def test_rescan_touches_everything_and_linked_git_dir() -> None:
    r = read_batch(_batch(rescan=True), PathFilter())
    assert {Aspect.TREE, Aspect.INDEX, Aspect.HEAD, Aspect.UPSTREAM} <= r.aspects
    outside = read_batch(_batch(Change(ChangeKind.MODIFIED, "HEAD")), PathFilter(), git_prefix="")
    assert outside.aspects == {Aspect.HEAD}
    none = read_batch(
        _batch(Change(ChangeKind.MODIFIED, ".git/HEAD")), PathFilter(), git_prefix=None
    )
    assert none.aspects == {Aspect.TREE}


# -- markdown --------------------------------------------------------------------------------------


def test_markdown_renders_every_kind() -> None:
    t0 = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.UTC).timestamp()
    entries = [
        WorklogEntry(
            "s", 1, EntryKind.SESSION_START, t0, {"branch": "feat/B-1", "head": "abcdef12345"}
        ),
        WorklogEntry(
            "s",
            2,
            EntryKind.FILES,
            t0 + 60,
            FileChanges(("n.py",), ("m.py",), ("d.py",), (("o.py", "p.py"),)).as_payload(),
        ),
        WorklogEntry(
            "s",
            3,
            EntryKind.COMMIT,
            t0 + 120,
            {"hash": "1234567890", "subject": "Add login", "files": ["a", "b"]},
        ),
        WorklogEntry("s", 4, EntryKind.NOTE, t0 + 180, {"text": "Decision: use trio\nsecond line"}),
        WorklogEntry(
            "s",
            5,
            EntryKind.PUSH,
            t0 + 86400,
            {"branch": "feat/B-1", "upstream": "origin/feat/B-1"},
        ),
        WorklogEntry("s", 6, EntryKind.BRANCH_SWITCH, t0 + 86401, {"from": "feat/B-1", "to": None}),
        WorklogEntry("s", 7, EntryKind.SESSION_STOP, t0 + 86402, {"reason": "branch_switch"}),
    ]
    summary = Summary("s", 2, decisions=("use trio",), metadata={"final": True})
    md = render_markdown(
        list(reversed(entries)),
        title="Worklog: B-1",
        meta={"session": "s", "backlog": None},
        summary=summary,
        tz=dt.UTC,
    )
    assert md.startswith("# Worklog: B-1\n")
    assert "- session: `s`" in md and "backlog" not in md
    assert "## Summary (version 2, final)" in md and "- use trio" in md
    assert "### 2024-05-01" in md and "### 2024-05-02" in md
    assert "- 09:30:00 **Session started** on `feat/B-1` at `abcdef12`" in md
    assert "created `n.py`; modified `m.py`; deleted `d.py`; moved `o.py` -> `p.py`" in md
    assert "**Commit** `12345678` Add login (2 files)" in md
    assert "**Note** Decision: use trio\n  second line" in md
    assert "**Pushed** `feat/B-1` to `origin/feat/B-1`" in md
    assert "**Branch switch** `feat/B-1` -> (detached)" in md
    assert "**Session stopped** (branch switch)" in md
    assert md.index("09:30:00") < md.index("Add login")
    assert render_markdown([]).endswith("_No entries yet._\n")


def test_markdown_quotes_backticks_and_caps_long_lists() -> None:
    many = [f"f{i}.py" for i in range(30)]
    e = WorklogEntry("s", 1, EntryKind.FILES, 0.0, {"modified": [*many, "we`ird.py"]})
    md = render_markdown([e], tz=dt.UTC)
    assert "and 19 more" in md
    e2 = WorklogEntry("s", 1, EntryKind.FILES, 0.0, {"modified": ["we`ird.py"]})
    assert "``we`ird.py``" in render_markdown([e2], tz=dt.UTC)
