"""The ``hook`` operation's handler on the real stack (git, watcher, PostgreSQL): sessions linked to
the agent's, prompts remembered, tool calls in the worklog, transcripts handed to an importer (one
that records what it is given), the session ended after the agent's end, odd input refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
import trio
from git_repos import make_repo
from scribe_support import open_stack

import adapters
import engine
from engine.app._control_hooks import ControlHooks
from engine.app._control_memory import ControlMemory


@dataclass
class Recorder:
    """A transcript importer that records each call."""

    calls: list[dict[str, Any]]

    async def schedule(
        self, *, session_id: str | None, agent_session_id: str, path: str, agent: str
    ) -> None:
        await trio.lowlevel.checkpoint()
        self.calls.append(
            {"session_id": session_id, "agent_session_id": agent_session_id, "path": path}
        )


@dataclass
class Hooks:
    stack: Any
    hooks: ControlHooks
    importer: Recorder

    async def fire(self, **payload: Any) -> Any:
        args = msgspec.convert({"agent": "claude-code", "payload": payload}, adapters.HookArgs)
        return await self.hooks.ops["hook"](args)


@asynccontextmanager
async def open_hooks(pg_url: str, *, recall: bool = False) -> AsyncIterator[Hooks]:
    async with open_stack(pg_url) as stack:
        memory = ControlMemory(
            memory=stack.memory,
            sources=stack.memory_sources,
            cache=stack.generation_cache,
            scribe=stack.scribe,
            default_session="default",
            privacy=stack.privacy,
        )
        importer = Recorder([])
        hooks = ControlHooks(
            scribe=stack.scribe,
            memory=memory,
            importer=importer,
            privacy=stack.privacy,
            recall=recall,
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(hooks.run)
            yield Hooks(stack, hooks, importer)
            nursery.cancel_scope.cancel()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "work", files={"app.py": "a = 1\n"})


def _base(event: str, agent: str, cwd: Path, tmp: Path) -> dict[str, Any]:
    return {
        "session_id": agent,
        "transcript_path": str(tmp / f"{agent}.jsonl"),
        "cwd": str(cwd),
        "hook_event_name": event,
    }


async def test_events_reach_sessions_memory_worklog_and_the_importer(
    pg_url: str, repo: Path, tmp_path: Path
) -> None:
    agent = "0b7c4a9e-3f1d-4c55-9a10-5d8e2f7a6b31"
    with trio.fail_after(60):
        async with open_hooks(pg_url) as h:
            start = await h.fire(**_base("SessionStart", agent, repo, tmp_path), source="startup")
            assert set(start) == {"additional_context"}
            assert start["additional_context"].startswith("Scribe briefing (repository ")
            record = await h.stack.scribe.resolve(agent)
            assert record.agent_session_id == agent and record.id in h.stack.scribe.live()
            resumed = await h.fire(**_base("SessionStart", agent, repo, tmp_path), source="resume")
            assert resumed["additional_context"]
            assert [r.id for r in await h.stack.registry.query(agent_session_id=agent)] == [
                record.id
            ]

            said = await h.fire(
                **_base("UserPromptSubmit", agent, repo, tmp_path),
                prompt="rename the flamingo endpoint",
            )
            assert said == {"additional_context": None}
            await h.fire(
                **_base("PostToolUse", agent, repo, tmp_path),
                tool_name="Edit",
                tool_input={
                    "file_path": str(repo / "app.py"),
                    "old_string": "a = 1",
                    "new_string": "a = 2",
                },
                tool_response={"filePath": str(repo / "app.py"), "success": True},
            )
            await h.fire(
                **_base("PostToolUse", agent, repo, tmp_path),
                tool_name="Bash",
                tool_input={"command": "pytest -q", "description": "run the tests"},
                tool_response={"stdout": "x" * 50_000, "stderr": "", "interrupted": True},
            )
            await h.fire(**_base("PreCompact", agent, repo, tmp_path), trigger="auto")
            await h.fire(**_base("Stop", agent, repo, tmp_path), stop_hook_active=False)
            await h.hooks.wait_idle()

            messages = await h.stack.memory.get_messages(record.id)
            assert [(m.role.value, m.content) for m in messages] == [
                ("user", "rename the flamingo endpoint")
            ]
            _, entries = await h.stack.scribe.worklog(record.id)
            tools = [e.payload for e in entries if e.kind is engine.EntryKind.TOOL]
            assert [(t["tool"], t["paths"], t["command"], t["ok"]) for t in tools] == [
                ("Edit", ["app.py"], None, True),
                ("Bash", [], "pytest -q", False),
            ]
            assert len(tools[1]["result"]) <= 2000 and "characters cut" in tools[1]["result"]
            assert (
                h.importer.calls
                == [
                    {
                        "session_id": record.id,
                        "agent_session_id": agent,
                        "path": str(tmp_path / f"{agent}.jsonl"),
                    }
                ]
                * 2
            )

            ended = await h.fire(**_base("SessionEnd", agent, repo, tmp_path), reason="exit")
            assert ended == {"additional_context": None}
            with trio.fail_after(20):
                await h.stack.scribe.wait_stopped(record.id)
            assert len(h.importer.calls) == 3
            assert (await h.stack.registry.get(record.id)).state is engine.SessionState.COMPLETED
            assert h.hooks.failed == 0


async def test_a_directory_outside_a_work_tree_gets_no_session(pg_url: str, tmp_path: Path) -> None:
    plain = tmp_path / "notes"
    plain.mkdir()
    with trio.fail_after(60):
        async with open_hooks(pg_url) as h:
            agent = "plain-dir-agent"
            got = await h.fire(**_base("SessionStart", agent, plain, tmp_path), source="startup")
            assert got["additional_context"].startswith("Scribe briefing (no repository)")
            await h.fire(**_base("UserPromptSubmit", agent, plain, tmp_path), prompt="hello there")
            await h.fire(
                **_base("PostToolUse", agent, plain, tmp_path),
                tool_name="Write",
                tool_input={"file_path": str(plain / "a.txt"), "content": "x"},
                tool_response={"success": True},
            )
            await h.fire(**_base("SessionEnd", agent, plain, tmp_path), reason="exit")
            await h.hooks.wait_idle()
            assert await h.stack.registry.query(agent_session_id=agent) == []
            assert [m.content for m in await h.stack.memory.get_messages("default")] == [
                "hello there"
            ]
            assert h.importer.calls[0]["session_id"] is None and h.hooks.failed == 0


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"hook_event_name": "SessionStart", "cwd": "/tmp"}, "agent session id must be a string"),
        ({"hook_event_name": "SessionStart", "session_id": "a"}, "needs its cwd"),
        (
            {"hook_event_name": "SessionStart", "session_id": "a", "cwd": "relative/dir"},
            "absolute path",
        ),
        (
            {"hook_event_name": "UserPromptSubmit", "session_id": "a", "cwd": "/", "prompt": 3},
            "needs its prompt",
        ),
        (
            {"hook_event_name": "PostToolUse", "session_id": "a", "cwd": "/", "tool_name": ""},
            "needs its tool_name",
        ),
        (
            {"hook_event_name": "Stop", "session_id": "a", "transcript_path": "/" + "x" * 5000},
            "transcript_path",
        ),
        ({"hook_event_name": "SessionStart", "session_id": "s" * 500, "cwd": "/"}, "200"),
        (
            {"hook_event_name": "SessionStart", "session_id": "a", "cwd": "/", "source": ["x"]},
            "source must be a string",
        ),
    ],
)
async def test_malformed_input_is_refused_with_a_typed_error(
    pg_url: str, payload: dict[str, Any], message: str
) -> None:
    with trio.fail_after(60):
        async with open_hooks(pg_url) as h:
            with pytest.raises(engine.InvalidArgumentError, match=message):
                await h.fire(**payload)
            assert h.stack.scribe.live() == []


async def test_unknown_events_and_foreign_fields_are_answered_with_null(pg_url: str) -> None:
    with trio.fail_after(60):
        async with open_hooks(pg_url) as h:
            for payload in (
                {},
                {"hook_event_name": "Notification", "session_id": "a", "message": "hi"},
                {"hook_event_name": 7},
                {"hook_event_name": "SubagentStop", "session_id": ["odd"]},
            ):
                assert await h.fire(**payload) == {"additional_context": None}
            deep: Any = "bottom"
            for _ in range(5000):
                deep = {"d": deep}
            got = await h.fire(hook_event_name="Notification", session_id="a", extra=deep)
            assert got == {"additional_context": None}


async def test_recall_for_a_prompt_when_switched_on(
    pg_url: str, repo: Path, tmp_path: Path
) -> None:
    agent = "recall-agent"
    with trio.fail_after(60):
        async with open_hooks(pg_url, recall=True) as h:
            await h.fire(**_base("SessionStart", agent, repo, tmp_path), source="startup")
            record = await h.stack.scribe.resolve(agent)
            await h.hooks.memory.ops["decide"](
                adapters.DecideArgs(text="the pelican queue uses advisory locks", session=record.id)
            )
            got = await h.fire(
                **_base("UserPromptSubmit", agent, repo, tmp_path),
                prompt="how does the pelican queue lock?",
            )
            text = got["additional_context"]
            assert text.startswith("Scribe recalls")
            assert "- [decision] the pelican queue uses advisory locks" in text


async def test_a_start_scrubs_the_description_name_and_tags(pg_url: str, repo: Path) -> None:
    key = "ghp_" + "Zq3vB8nR2kT5wY1xC4mJ7pL0sD6fH9gA2eU5"
    with trio.fail_after(60):
        async with open_hooks(pg_url) as h:
            record = await h.stack.scribe.start(
                repo,
                name="fix <private>codename</private>",
                description=f"token {key} <private>the pin 4471</private>",
                tags=["ok", "<private>x</private>"],
            )
            stored = await h.stack.registry.get(record.id)
            _, entries = await h.stack.scribe.worklog(record.id)
    assert stored.description == "token [redacted:github-token] [private]"
    assert stored.name == "fix [private]" and stored.tags == ("ok", "[private]")
    assert "4471" not in repr(entries) and key not in repr(entries)
