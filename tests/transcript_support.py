"""Realistic Claude Code transcripts and Codex CLI rollouts for the tests, built from the public
formats (see the docstrings of adapters/agents/_claude_transcript.py and _codex_rollout.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SESSION = "0a3c5e7f-1b2d-4c6e-8f00-112233445566"
CWD = "/home/ada/src/scribe"
BRANCH = "feature/hooks"
MODEL = "claude-sonnet-4-5-20250929"
THINKING = "SECRET-THINKING: the user might prefer a rewrite"
IMAGE_DATA = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def line(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def write_lines(path: Path, *objs: object, mode: str = "wb") -> None:
    with path.open(mode) as f:
        for obj in objs:
            f.write(obj if isinstance(obj, bytes) else line(obj))


def envelope(
    kind: str, uuid: str, parent: str | None, message: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """A Claude Code ``user`` or ``assistant`` line."""
    return {
        "parentUuid": parent,
        "isSidechain": False,
        "userType": "external",
        "cwd": CWD,
        "sessionId": SESSION,
        "version": "2.0.14",
        "gitBranch": BRANCH,
        "type": kind,
        "message": message,
        "uuid": uuid,
        "timestamp": "2025-10-14T09:30:00.123Z",
        **extra,
    }


def user(uuid: str, parent: str | None, content: object, **extra: Any) -> dict[str, Any]:
    return envelope("user", uuid, parent, {"role": "user", "content": content}, **extra)


def assistant(uuid: str, parent: str | None, blocks: list[Any], **extra: Any) -> dict[str, Any]:
    message = {
        "model": MODEL,
        "id": f"msg_{uuid[:8]}",
        "type": "message",
        "role": "assistant",
        "content": blocks,
        "stop_reason": None,
        "usage": {"input_tokens": 12, "output_tokens": 34, "cache_read_input_tokens": 5000},
    }
    return envelope("assistant", uuid, parent, message, requestId=f"req_{uuid[:8]}", **extra)


def tool_use(call_id: str, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": tool_input}


def tool_result(call_id: str, content: object, *, is_error: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id, "content": content}
    if is_error:
        block["is_error"] = True
    return block


def image() -> dict[str, Any]:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": IMAGE_DATA},
    }


def claude_session() -> list[dict[str, Any]]:
    """One session using every record and block type a Claude Code transcript holds."""
    return [
        {"type": "summary", "summary": "Hook capture for Claude Code", "leafUuid": "u-9"},
        {
            "type": "file-history-snapshot",
            "messageId": "u-1",
            "snapshot": {"trackedFileBackups": {}},
            "isSnapshotUpdate": False,
        },
        user("u-1", None, "Add a PostToolUse hook that records edits"),
        assistant(
            "a-1",
            "u-1",
            [
                {"type": "thinking", "thinking": THINKING, "signature": "c2ln"},
                {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk" + THINKING},
                {"type": "text", "text": "I'll start with the hook module."},
                tool_use(
                    "toolu_01",
                    "Edit",
                    {"file_path": f"{CWD}/hook.py", "old_string": "a", "new_string": "b"},
                ),
            ],
        ),
        user("u-2", "a-1", [tool_result("toolu_01", "The file hook.py has been updated.")]),
        assistant(
            "a-2",
            "u-2",
            [
                tool_use("toolu_02", "Write", {"file_path": f"{CWD}/new.py", "content": "x = 1\n"}),
                tool_use(
                    "toolu_03",
                    "MultiEdit",
                    {
                        "file_path": f"{CWD}/multi.py",
                        "edits": [{"old_string": "a", "new_string": "b"}],
                    },
                ),
                tool_use(
                    "toolu_04",
                    "NotebookEdit",
                    {"notebook_path": f"{CWD}/nb.ipynb", "new_source": "print(1)"},
                ),
                tool_use(
                    "toolu_05", "Bash", {"command": "pytest -q tests/", "description": "Run tests"}
                ),
                tool_use("toolu_06", "Read", {"file_path": f"{CWD}/README.md"}),
            ],
        ),
        user(
            "u-3",
            "a-2",
            [
                tool_result(
                    "toolu_05", [{"type": "text", "text": "3 failed"}, image()], is_error=True
                ),
                tool_result("toolu_06", [{"type": "text", "text": "# Scribe"}]),
            ],
            toolUseResult={"stdout": "3 failed", "stderr": "", "interrupted": False},
        ),
        user("u-4", "u-3", [{"type": "text", "text": "Here is the screenshot"}, image()]),
        assistant(
            "a-3",
            "u-4",
            [{"type": "text", "text": "Exploring the code base"}],
            isSidechain=True,
        ),
        user(
            "u-5",
            "a-3",
            "Caveat: The messages below were generated by the user while running local commands.",
            isMeta=True,
        ),
        {
            "parentUuid": "u-5",
            "isSidechain": False,
            "type": "system",
            "subtype": "compact_boundary",
            "content": "Conversation compacted",
            "level": "info",
            "uuid": "s-1",
            "sessionId": SESSION,
            "timestamp": "2025-10-14T09:40:00Z",
            "compactMetadata": {"trigger": "auto", "preTokens": 150000},
        },
        user(
            "u-6",
            "s-1",
            "This session is being continued from a previous conversation. Summary: hooks.",
            isCompactSummary=True,
            isVisibleInTranscriptOnly=True,
        ),
        {"type": "mystery-record-from-a-future-version", "uuid": "m-1", "payload": [1, 2]},
        assistant("a-4", "u-6", [{"type": "thinking", "thinking": THINKING, "signature": "c2ln"}]),
    ]


CODEX_SESSION = "019a2d7a-41c4-78b1-b7cc-a45d62a89cd5"
CODEX_CWD = "/home/ada/src/engine"
CODEX_MODEL = "gpt-5-codex"
REASONING = "SECRET-REASONING: maybe delete the tests"
PATCH = (
    "*** Begin Patch\n*** Update File: engine/app.py\n@@\n-x\n+y\n"
    "*** Add File: engine/new.py\n+z\n*** Delete File: old.py\n*** End Patch\n"
)


def rollout(
    kind: str, payload: dict[str, Any], ts: str = "2025-10-29T00:59:38.317Z"
) -> dict[str, Any]:
    return {"timestamp": ts, "type": kind, "payload": payload}


def codex_message(role: str, *parts: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": list(parts)}


def text_part(kind: str, text: str) -> dict[str, Any]:
    return {"type": kind, "text": text}


def codex_session(*, subagent: bool = False) -> list[dict[str, Any]]:
    """A Codex CLI rollout of the current shape (``{timestamp, type, payload}`` lines)."""
    return [
        rollout(
            "session_meta",
            {
                "id": CODEX_SESSION,
                "timestamp": "2025-10-29T00:59:38.308Z",
                "cwd": CODEX_CWD,
                "originator": "codex_cli_rs",
                "cli_version": "0.46.0",
                "instructions": None,
                "source": {"subagent": "review"} if subagent else "cli",
                "model_provider": "openai",
                "git": {
                    "commit_hash": "4f2c0e1d9b8a7c6e5f4d3c2b1a0f9e8d7c6b5a49",
                    "branch": "main",
                    "repository_url": "git@github.com:ada/engine.git",
                },
            },
        ),
        rollout(
            "response_item",
            codex_message(
                "user",
                text_part(
                    "input_text",
                    "<environment_context>\n  <cwd>/home/ada/src/engine</cwd>\n</environment_context>",
                ),
            ),
        ),
        rollout(
            "response_item",
            codex_message(
                "developer",
                text_part(
                    "input_text", "<permissions instructions>never</permissions instructions>"
                ),
            ),
        ),
        rollout(
            "response_item",
            codex_message(
                "user",
                text_part("input_text", "Fix the failing test"),
                {"type": "input_image", "image_url": "data:image/png;base64," + IMAGE_DATA},
            ),
        ),
        rollout(
            "event_msg",
            {"type": "user_message", "message": "Fix the failing test", "kind": "plain"},
        ),
        rollout(
            "turn_context",
            {
                "cwd": CODEX_CWD,
                "approval_policy": "on-request",
                "sandbox_policy": {"mode": "workspace-write"},
                "model": CODEX_MODEL,
                "effort": "high",
                "summary": "auto",
            },
        ),
        rollout(
            "response_item",
            {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": REASONING}],
                "content": None,
                "encrypted_content": "gAAAAB" + REASONING,
            },
        ),
        rollout("event_msg", {"type": "agent_reasoning", "text": REASONING}),
        rollout(
            "response_item",
            {
                "type": "function_call",
                "name": "shell",
                "arguments": json.dumps(
                    {"command": ["bash", "-lc", "pytest -q"], "workdir": CODEX_CWD}
                ),
                "call_id": "call_1",
            },
        ),
        rollout(
            "response_item",
            {
                "type": "function_call_output",
                "call_id": "call_1",
                "output": json.dumps({"output": "1 failed", "metadata": {"exit_code": 1}}),
            },
        ),
        rollout(
            "response_item",
            {
                "type": "custom_tool_call",
                "status": "completed",
                "call_id": "call_2",
                "name": "apply_patch",
                "input": PATCH,
            },
        ),
        rollout(
            "response_item",
            {"type": "custom_tool_call_output", "call_id": "call_2", "output": "Success."},
        ),
        rollout(
            "response_item",
            {
                "type": "function_call",
                "name": "apply_patch",
                "arguments": json.dumps(
                    {"input": "*** Begin Patch\n*** Update File: docs/a.md\n*** End Patch"}
                ),
                "call_id": "call_3",
            },
        ),
        rollout(
            "response_item",
            {
                "type": "local_shell_call",
                "call_id": "call_4",
                "status": "completed",
                "action": {"type": "exec", "command": ["git", "status"], "timeout_ms": 1000},
            },
        ),
        rollout(
            "response_item",
            {
                "type": "web_search_call",
                "status": "completed",
                "action": {"type": "search", "query": "pytest xfail"},
            },
        ),
        rollout(
            "response_item",
            codex_message("assistant", text_part("output_text", "Fixed: the test passes now.")),
        ),
        rollout("event_msg", {"type": "agent_message", "message": "Fixed: the test passes now."}),
        rollout("event_msg", {"type": "token_count", "info": None}),
        rollout("compacted", {"message": "Summary: fixed the failing test in engine/app.py"}),
        rollout("response_item", {"type": "ghost_snapshot", "ghost_commit": {"id": "abc"}}),
        rollout("brand_new_rollout_item", {"anything": True}),
        rollout("response_item", {"type": "brand_new_response_item"}),
    ]


def codex_legacy_session() -> list[dict[str, Any]]:
    """A Codex CLI rollout of the older shape: a bare first line, state markers, bare items."""
    return [
        {
            "id": "5973b6c0-94b8-487b-a530-2aeb6098ae0e",
            "timestamp": "2025-07-16T10:00:00.000Z",
            "instructions": None,
            "git": {
                "commit_hash": "0123456789abcdef0123456789abcdef01234567",
                "branch": "legacy",
                "repository_url": None,
            },
        },
        {"record_type": "state"},
        codex_message("user", text_part("input_text", "List the files")),
        {
            "type": "function_call",
            "id": "fc_1",
            "name": "shell",
            "arguments": '{"command":["ls","-la"]}',
            "call_id": "call_a",
        },
        {
            "type": "function_call_output",
            "call_id": "call_a",
            "output": {"content": "ls: cannot open", "success": False},
        },
        {"record_type": "state"},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": REASONING}],
        },
        codex_message("assistant", text_part("output_text", "The folder is not readable.")),
    ]
