"""Claude Code transcripts and Codex CLI rollouts read incrementally: every record and block type,
bounded texts, torn and oversized lines, growing files, special files, and the file search."""

from __future__ import annotations

import json
import os
import tracemalloc
from dataclasses import astuple, replace
from pathlib import Path

import pytest
from fs_support import make_fifo, make_zero_device, unblocking
from transcript_support import (
    BRANCH,
    CODEX_CWD,
    CODEX_MODEL,
    CODEX_SESSION,
    CWD,
    IMAGE_DATA,
    MODEL,
    REASONING,
    SESSION,
    THINKING,
    assistant,
    claude_session,
    codex_legacy_session,
    codex_session,
    line,
    tool_result,
    tool_use,
    user,
    write_lines,
)

from adapters.agents import _transcript_files
from adapters.agents._claude_transcript import read_claude_transcript
from adapters.agents._codex_rollout import read_codex_rollout
from adapters.agents._jsonl_lines import MAX_LINE_BYTES
from adapters.agents._transcript_files import (
    TranscriptSearchLimitError,
    find_transcripts,
)
from adapters.agents._transcript_records import (
    TEXT_LIMIT,
    TOOL_INPUT_LIMIT,
    TranscriptBatch,
    TranscriptRecord,
)
from engine import FileAccessError, InvalidArgumentError, NoSuchFileError, NotRegularFileError


def _everything(batch: TranscriptBatch) -> str:
    return "\n".join(repr(astuple(r)) for r in batch.records)


def _by_uid(batch: TranscriptBatch) -> dict[str, TranscriptRecord]:
    return {r.uid: r for r in batch.records}


# --- Claude Code ---------------------------------------------------------------------------------


def test_every_claude_record_and_block_type_becomes_bounded_records(tmp_path: Path) -> None:
    path = tmp_path / f"{SESSION}.jsonl"
    objs = claude_session()
    write_lines(path, *objs, b"\n", b"not json at all\n", b"[1, 2, 3]\n")
    batch = read_claude_transcript(path)

    assert batch.next_offset == batch.size == path.stat().st_size and batch.at_end
    assert batch.lines == len(objs) + 3
    # the unknown record type, the line that is not JSON and the array
    assert batch.skipped == 3
    rec = _by_uid(batch)
    assert [(r.uid, r.kind) for r in batch.records] == [
        (next(iter(rec)), "summary"),
        ("u-1", "user_message"),
        ("a-1", "assistant_message"),
        ("a-1/1", "tool_use"),
        ("u-2", "tool_result"),
        ("a-2", "tool_use"),
        ("a-2/1", "tool_use"),
        ("a-2/2", "tool_use"),
        ("a-2/3", "tool_use"),
        ("a-2/4", "tool_use"),
        ("u-3", "tool_result"),
        ("u-3/1", "tool_result"),
        ("u-4", "user_message"),
        ("a-3", "assistant_message"),
        ("u-5", "user_message"),
        ("s-1", "system"),
        ("u-6", "summary"),
    ]
    summary = batch.records[0]
    assert summary.uid.startswith("sha256:") and summary.text == "Hook capture for Claude Code"

    prompt = rec["u-1"]
    assert (prompt.role, prompt.text) == ("user", "Add a PostToolUse hook that records edits")
    assert (prompt.session_id, prompt.cwd, prompt.git_branch) == (SESSION, CWD, BRANCH)
    assert (
        prompt.timestamp is not None
        and prompt.timestamp.isoformat() == "2025-10-14T09:30:00.123000+00:00"
    )
    assert prompt.model is None and not prompt.sidechain and not prompt.meta

    said = rec["a-1"]
    assert (said.role, said.text, said.model) == (
        "assistant",
        "I'll start with the hook module.",
        MODEL,
    )
    edit = rec["a-1/1"]
    assert (edit.tool, edit.call_id, edit.paths, edit.command) == (
        "Edit",
        "toolu_01",
        (f"{CWD}/hook.py",),
        None,
    )
    assert edit.text == "" and json.loads(edit.tool_input or "")["new_string"] == "b"
    assert rec["u-2"].tool == "Edit" and rec["u-2"].call_id == "toolu_01"
    assert rec["u-2"].text == "The file hook.py has been updated." and not rec["u-2"].error

    assert [(rec[f"a-2{s}"].tool, rec[f"a-2{s}"].paths) for s in ("", "/1", "/2")] == [
        ("Write", (f"{CWD}/new.py",)),
        ("MultiEdit", (f"{CWD}/multi.py",)),
        ("NotebookEdit", (f"{CWD}/nb.ipynb",)),
    ]
    bash = rec["a-2/3"]
    assert (bash.tool, bash.command, bash.paths) == ("Bash", "pytest -q tests/", ())
    assert (rec["a-2/4"].tool, rec["a-2/4"].paths, rec["a-2/4"].command) == ("Read", (), None)

    failed = rec["u-3"]
    assert (failed.tool, failed.error, failed.text) == (
        "Bash",
        True,
        "3 failed\n[image: image/png]",
    )
    assert rec["u-3/1"].text == "# Scribe" and not rec["u-3/1"].error

    assert rec["u-4"].text == "Here is the screenshot\n\n[image: image/png]"
    assert rec["a-3"].sidechain and not rec["u-4"].sidechain
    assert rec["u-5"].meta and not rec["u-4"].meta
    assert rec["s-1"].text == "Conversation compacted" and rec["s-1"].meta
    assert rec["u-6"].role == "user" and rec["u-6"].text.startswith(
        "This session is being continued"
    )

    # thinking reaches no record, an image's data neither; the thinking-only line gives nothing
    everything = _everything(batch)
    assert THINKING not in everything and IMAGE_DATA not in everything
    assert "a-4" not in rec


def test_a_one_megabyte_tool_result_and_input_are_cut_with_a_marker(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    huge = "0123456789" * 100_000  # 1,000,000 characters
    write_lines(
        path,
        assistant(
            "a-1",
            None,
            [tool_use("toolu_1", "Write", {"file_path": "/w/big.txt", "content": huge})],
        ),
        user("u-1", "a-1", [tool_result("toolu_1", huge)]),
        user("u-2", "u-1", [tool_result("toolu_1", [{"type": "text", "text": huge}] * 3)]),
        user("u-3", "u-2", huge),
    )
    batch = read_claude_transcript(path)
    call, result, blocks, prompt = batch.records
    assert call.tool_input is not None and len(call.tool_input) < TOOL_INPUT_LIMIT + 60
    assert call.paths == ("/w/big.txt",)
    for record, total in ((result, 1_000_000), (blocks, 3_000_002), (prompt, 1_000_000)):
        assert len(record.text) < TEXT_LIMIT + 60
        assert record.text.startswith(huge[:TEXT_LIMIT])
        assert record.text.endswith(f"… [{total - TEXT_LIMIT:,} more characters cut]")


def test_a_torn_last_line_is_left_until_it_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "torn.jsonl"
    first, second = line(user("u-1", None, "one")), line(user("u-2", "u-1", "two"))
    path.write_bytes(first + second[:40])
    batch = read_claude_transcript(path)
    assert [r.uid for r in batch.records] == ["u-1"]
    assert batch.next_offset == len(first) and batch.at_end and batch.skipped == 0
    # a torn line that happens to be valid JSON is still not read before its newline
    path.write_bytes(first + second[:-1])
    assert read_claude_transcript(path, offset=len(first)).records == []
    # the writer finishes the line: the next read from next_offset picks it up, and only it
    path.write_bytes(first + second)
    later = read_claude_transcript(path, offset=batch.next_offset)
    assert [(r.uid, r.text) for r in later.records] == [("u-2", "two")]
    assert later.next_offset == len(first + second) and later.lines == 1


def test_a_growing_file_read_in_steps_gives_each_record_once(tmp_path: Path) -> None:
    path = tmp_path / "grow.jsonl"
    objs = claude_session()
    offset, seen = 0, []
    for obj in objs:
        write_lines(path, obj, mode="ab")
        batch = read_claude_transcript(path, offset=offset)
        seen += [r.uid for r in batch.records]
        offset = batch.next_offset
        again = read_claude_transcript(path, offset=offset)
        assert again.records == [] and again.lines == 0 and again.next_offset == offset
    whole = read_claude_transcript(path)
    assert seen == [r.uid for r in whole.records] and len(set(seen)) == len(seen)
    assert read_claude_transcript(path) == whole  # twice from 0: the same records, the same uids


def test_max_bytes_bounds_a_read_and_every_read_makes_progress(tmp_path: Path) -> None:
    path = tmp_path / "steps.jsonl"
    write_lines(path, *claude_session())
    whole = read_claude_transcript(path)
    offset, records, reads = 0, [], 0
    while True:
        batch = read_claude_transcript(path, offset=offset, max_bytes=300)
        reads += 1
        records += batch.records
        # one line longer than max_bytes is still read whole; never more than that one
        assert batch.lines >= 1 or batch.at_end
        assert batch.next_offset - offset <= 300 or batch.lines == 1
        offset = batch.next_offset
        if batch.at_end:
            break
    # a result read in a later batch than its call knows the call's id, not always its tool
    assert [(r.uid, r.kind, r.text, r.call_id) for r in records] == [
        (r.uid, r.kind, r.text, r.call_id) for r in whole.records
    ]
    assert reads > 5
    with pytest.raises(InvalidArgumentError):
        read_claude_transcript(path, max_bytes=0)
    with pytest.raises(InvalidArgumentError):
        read_claude_transcript(path, offset=-1)


def test_a_line_past_the_bound_is_skipped_without_being_held(tmp_path: Path) -> None:
    path = tmp_path / "oversized.jsonl"
    big = 40 * 1024 * 1024
    with path.open("wb") as f:
        f.write(line(user("u-1", None, "before")))
        f.write(b'{"type":"user","message":{"role":"user","content":"')
        chunk = b"x" * (1024 * 1024)
        for _ in range(big // len(chunk)):
            f.write(chunk)
        f.write(b'"},"uuid":"u-big"}\n')
        f.write(line(user("u-2", "u-1", "after")))
    assert big > 2 * MAX_LINE_BYTES
    tracemalloc.start()
    try:
        batch = read_claude_transcript(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [r.uid for r in batch.records] == ["u-1", "u-2"]
    assert (batch.lines, batch.skipped, batch.at_end) == (3, 1, True)
    assert peak < MAX_LINE_BYTES + 8 * 1024 * 1024 < big


def test_crlf_lines_read_like_lf_lines(tmp_path: Path) -> None:
    lf, crlf = tmp_path / "lf.jsonl", tmp_path / "crlf.jsonl"
    write_lines(lf, *claude_session())
    crlf.write_bytes(lf.read_bytes().replace(b"\n", b"\r\n"))
    a, b = read_claude_transcript(lf), read_claude_transcript(crlf)
    assert [replace(r, line_offset=0) for r in a.records] == [
        replace(r, line_offset=0) for r in b.records
    ]
    assert b.next_offset == crlf.stat().st_size and b.skipped == a.skipped


def test_invalid_utf8_nul_and_lone_surrogates_become_replacement_characters(tmp_path: Path) -> None:
    path = tmp_path / "bytes.jsonl"
    bad = line(user("u-1", None, "caf\u00e9 MARK")).replace(b"MARK", b"\xff\xfe")
    escaped = (
        b'{"type":"user","uuid":"u-2","message":{"role":"user","content":"a\\u0000b\\ud800c"}}\n'
    )
    path.write_bytes(bad + escaped + b"\xff\xff\xff\n")
    batch = read_claude_transcript(path)
    assert [r.text for r in batch.records] == ["caf\u00e9 \ufffd\ufffd", "a\ufffdb\ufffdc"]
    assert batch.skipped == 1
    for record in batch.records:
        record.text.encode("utf-8")  # storable as it is


def test_a_stale_offset_inside_a_line_skips_the_rest_of_that_line(tmp_path: Path) -> None:
    path = tmp_path / "stale.jsonl"
    first = line(user("u-1", None, "one"))
    write_lines(path, user("u-1", None, "one"), user("u-2", "u-1", "two"))
    batch = read_claude_transcript(path, offset=10)
    assert [r.uid for r in batch.records] == ["u-2"]
    assert (batch.lines, batch.skipped) == (2, 1) and batch.next_offset == path.stat().st_size
    assert read_claude_transcript(path, offset=len(first)).skipped == 0
    # even where the rest of the line would parse (two objects a crashed writer glued together)
    glued = tmp_path / "glued.jsonl"
    head = b'{"type":"summary","summary":"s"}'
    glued.write_bytes(head + line(user("u-3", None, "three")) + line(user("u-4", None, "four")))
    batch = read_claude_transcript(glued, offset=len(head))
    assert [r.uid for r in batch.records] == ["u-4"] and batch.skipped == 1


def test_a_truncated_file_says_so_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "short.jsonl"
    write_lines(path, user("u-1", None, "one"))
    batch = read_claude_transcript(path, offset=10_000)
    assert batch.records == [] and batch.size < 10_000 and batch.next_offset == 10_000


def test_a_tool_result_in_a_later_batch_has_its_call_id(tmp_path: Path) -> None:
    path = tmp_path / "split.jsonl"
    write_lines(path, assistant("a-1", None, [tool_use("toolu_9", "Bash", {"command": "ls"})]))
    first = read_claude_transcript(path)
    write_lines(path, user("u-1", "a-1", [tool_result("toolu_9", "a b")]), mode="ab")
    result = read_claude_transcript(path, offset=first.next_offset).records[0]
    assert (result.kind, result.call_id, result.tool) == ("tool_result", "toolu_9", None)


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    fifo = make_fifo(tmp_path / "fifo.jsonl")
    with unblocking(fifo):
        with pytest.raises(NotRegularFileError) as info:
            read_claude_transcript(fifo)
        with pytest.raises(NotRegularFileError):
            read_codex_rollout(fifo)
    assert info.value.kind == "FIFO"
    link = tmp_path / "link.jsonl"
    link.symlink_to(fifo)
    with unblocking(fifo), pytest.raises(NotRegularFileError):
        read_claude_transcript(link)
    zero = make_zero_device(tmp_path / "zero.jsonl")
    with pytest.raises(NotRegularFileError) as info:
        read_claude_transcript(zero)
    assert info.value.kind == "character device"
    with pytest.raises(FileAccessError):
        read_claude_transcript(tmp_path)
    with pytest.raises(NoSuchFileError):
        read_claude_transcript(tmp_path / "missing.jsonl")


# --- Codex CLI -----------------------------------------------------------------------------------


def test_a_codex_rollout_becomes_records_with_its_session_context(tmp_path: Path) -> None:
    path = tmp_path / f"rollout-2025-10-29T00-59-38-{CODEX_SESSION}.jsonl"
    objs = codex_session()
    write_lines(path, *objs)
    batch = read_codex_rollout(path)
    assert batch.lines == len(objs) and batch.skipped == 2 and batch.at_end
    kinds = [(r.kind, r.role, r.meta) for r in batch.records]
    assert kinds == [
        ("user_message", "user", True),
        ("system", "developer", True),
        ("user_message", "user", False),
        ("tool_use", "assistant", False),
        ("tool_result", "tool", False),
        ("tool_use", "assistant", False),
        ("tool_result", "tool", False),
        ("tool_use", "assistant", False),
        ("tool_use", "assistant", False),
        ("tool_use", "assistant", False),
        ("assistant_message", "assistant", False),
        ("summary", None, False),
    ]
    env, _, prompt, shell, output, patch, patched, patch_fn, local, search, said, summary = (
        batch.records
    )
    assert env.text.startswith("<environment_context>")
    assert prompt.text == "Fix the failing test\n\n[image: image/png]"
    for record in batch.records:
        assert (record.session_id, record.cwd, record.git_branch) == (
            CODEX_SESSION,
            CODEX_CWD,
            "main",
        )
        assert record.uid.startswith("sha256:") and not record.sidechain
        assert record.timestamp is not None and record.timestamp.year == 2025
    assert len({r.uid for r in batch.records}) == len(batch.records)
    assert (
        prompt.model is None
        and said.model == CODEX_MODEL
        and said.text == "Fixed: the test passes now."
    )
    assert (shell.tool, shell.call_id, shell.command) == ("shell", "call_1", "pytest -q")
    assert (output.tool, output.call_id) == ("shell", "call_1") and "1 failed" in output.text
    assert (patch.tool, patch.paths) == (
        "apply_patch",
        ("engine/app.py", "engine/new.py", "old.py"),
    )
    assert patch.tool_input is not None and patch.tool_input.startswith("*** Begin Patch")
    assert (patched.tool, patched.text) == ("apply_patch", "Success.")
    assert patch_fn.paths == ("docs/a.md",)
    assert (local.tool, local.command, local.call_id) == ("local_shell", "git status", "call_4")
    assert search.tool == "web_search" and "pytest xfail" in (search.tool_input or "")
    assert summary.text == "Summary: fixed the failing test in engine/app.py"
    everything = _everything(batch)
    assert REASONING not in everything and IMAGE_DATA not in everything


def test_a_codex_read_from_an_offset_still_knows_its_session(tmp_path: Path) -> None:
    path = tmp_path / "rollout.jsonl"
    objs = codex_session()
    write_lines(path, *objs[:4])
    first = read_codex_rollout(path)
    write_lines(path, *objs[4:], mode="ab")
    later = read_codex_rollout(path, offset=first.next_offset)
    whole = read_codex_rollout(path)
    assert [r.uid for r in first.records + later.records] == [r.uid for r in whole.records]
    assert first.records + later.records == whole.records
    assert {(r.session_id, r.git_branch) for r in later.records} == {(CODEX_SESSION, "main")}


def test_a_codex_subagent_rollout_is_a_sidechain(tmp_path: Path) -> None:
    path = tmp_path / "rollout.jsonl"
    write_lines(path, *codex_session(subagent=True))
    batch = read_codex_rollout(path)
    assert batch.records and all(r.sidechain for r in batch.records)


def test_an_older_codex_rollout_without_wrappers_is_read(tmp_path: Path) -> None:
    path = tmp_path / "rollout-2025-07-16T10-00-00-5973b6c0-94b8-487b-a530-2aeb6098ae0e.jsonl"
    objs = codex_legacy_session()
    write_lines(path, *objs)
    batch = read_codex_rollout(path)
    assert batch.skipped == 0 and batch.lines == len(objs)
    prompt, call, output, said = batch.records
    assert (prompt.kind, prompt.text, prompt.timestamp) == ("user_message", "List the files", None)
    assert (call.tool, call.command, call.call_id) == ("shell", "ls -la", "call_a")
    assert (output.kind, output.error, output.text, output.tool) == (
        "tool_result",
        True,
        "ls: cannot open",
        "shell",
    )
    assert said.kind == "assistant_message"
    for record in batch.records:
        assert (record.session_id, record.git_branch) == (
            "5973b6c0-94b8-487b-a530-2aeb6098ae0e",
            "legacy",
        )
    assert REASONING not in _everything(batch)
    # from an offset, the bare first line is read again for the session
    later = read_codex_rollout(path, offset=said.line_offset)
    assert [r.session_id for r in later.records] == ["5973b6c0-94b8-487b-a530-2aeb6098ae0e"]


def test_codex_torn_lines_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "rollout.jsonl"
    data = b"".join(line(o) for o in codex_session())
    path.write_bytes(data[:-30])
    torn = read_codex_rollout(path)
    assert torn.next_offset == data.rfind(b"\n", 0, len(data) - 1) + 1
    path.write_bytes(data)
    rest = read_codex_rollout(path, offset=torn.next_offset)
    assert torn.records + rest.records == read_codex_rollout(path).records
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes(data.replace(b"\n", b"\r\n"))
    assert [r.uid for r in read_codex_rollout(crlf).records] == [
        r.uid for r in read_codex_rollout(path).records
    ]


# --- finding transcript files --------------------------------------------------------------------


def test_a_projects_folder_gives_its_transcripts_sorted(tmp_path: Path) -> None:
    projects = tmp_path / "projects"
    a = projects / "-home-ada-src-scribe"
    b = projects / "-home-ada-src-engine"
    (a / SESSION / "subagents").mkdir(parents=True)
    b.mkdir(parents=True)
    files = [
        a / f"{SESSION}.jsonl",
        a / SESSION / "subagents" / "agent-1a2b.jsonl",
        b / "0b00c0de-0000-4000-8000-000000000000.jsonl",
    ]
    for f in files:
        write_lines(f, user("u-1", None, "hi"))
    (a / "notes.txt").write_text("not a transcript")
    (a / SESSION / "tool-results").mkdir()
    (a / SESSION / "tool-results" / "toolu_1.txt").write_text("x")
    fifo = make_fifo(a / "fifo.jsonl")
    (a / "link.jsonl").symlink_to(files[0])
    (projects / "loop").symlink_to(projects)
    deep = projects.joinpath(*"1234567")
    deep.mkdir(parents=True)
    write_lines(deep / "too-deep.jsonl", user("u-1", None, "hi"))
    with unblocking(fifo):
        assert find_transcripts(projects) == sorted(files)
        assert find_transcripts(str(files[0])) == [files[0]]
        with pytest.raises(NotRegularFileError):
            find_transcripts(fifo)
    with pytest.raises(NoSuchFileError):
        find_transcripts(tmp_path / "missing")


def test_codex_dated_folders_come_oldest_first(tmp_path: Path) -> None:
    sessions = tmp_path / ".codex" / "sessions"
    names = [
        ("2025", "12", "31", "rollout-2025-12-31T23-59-00-aaaa.jsonl"),
        ("2026", "01", "02", "rollout-2026-01-02T08-00-00-bbbb.jsonl"),
        ("2026", "01", "02", "rollout-2026-01-02T09-00-00-cccc.jsonl"),
    ]
    for *folders, name in reversed(names):
        folder = sessions.joinpath(*folders)
        folder.mkdir(parents=True, exist_ok=True)
        write_lines(folder / name, *codex_session()[:1])
    found = find_transcripts(tmp_path / ".codex")
    assert [p.name for p in found] == [n[-1] for n in names]


def test_a_search_past_its_bound_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(4):
        write_lines(tmp_path / f"{i}.jsonl", user("u-1", None, "hi"))
    monkeypatch.setattr(_transcript_files, "MAX_TRANSCRIPT_FILES", 3)
    with pytest.raises(TranscriptSearchLimitError) as info:
        find_transcripts(tmp_path)
    assert info.value.limit == 3 and info.value.path == tmp_path
    assert "import a folder further down" in str(info.value)
    monkeypatch.setattr(_transcript_files, "MAX_TRANSCRIPT_FILES", 4)
    assert len(find_transcripts(tmp_path)) == 4
    monkeypatch.setattr(_transcript_files, "MAX_SEARCH_ENTRIES", 2)
    with pytest.raises(TranscriptSearchLimitError):
        find_transcripts(tmp_path)


def test_reading_a_file_leaves_no_descriptor_open(tmp_path: Path) -> None:
    path = tmp_path / "fd.jsonl"
    write_lines(path, *claude_session())
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        read_claude_transcript(path)
        read_codex_rollout(path, offset=5)
    with pytest.raises(NotRegularFileError):
        read_claude_transcript(make_zero_device(tmp_path / "zero"))
    assert len(os.listdir("/proc/self/fd")) == before
