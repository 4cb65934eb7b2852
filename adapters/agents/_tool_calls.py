"""What an agent's tool call touched: the files it writes and the shell command it runs.

Claude Code's tools (https://code.claude.com/docs/en/settings#tools-available-to-claude, and the
``tool_input`` of its PostToolUse hook payload, https://code.claude.com/docs/en/hooks):
``Write``/``Edit``/``MultiEdit`` take ``file_path``, ``NotebookEdit`` takes ``notebook_path``,
``Bash`` takes ``command``.

Codex CLI's tools (openai/codex, ``codex-rs/protocol/src/models.rs``: ``ShellToolCallParams``,
``ShellCommandToolCallParams``, ``LocalShellExecAction``; ``codex-rs/apply-patch``): ``shell``
takes ``command`` as an argv list, ``shell_command`` a string, ``exec_command`` a ``cmd`` string;
``apply_patch`` takes a patch whose ``*** Add File: ``, ``*** Update File: ``,
``*** Delete File: `` and ``*** Move to: `` lines name the files.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Final

from ._transcript_records import MAX_PATHS, PATH_LIMIT, bounded

__all__ = ["claude_tool_effects", "codex_tool_effects", "patch_paths"]

_CLAUDE_PATH_KEYS: Final = {
    "Write": "file_path",
    "Edit": "file_path",
    "MultiEdit": "file_path",
    "NotebookEdit": "notebook_path",
}
_PATCH_HEADERS: Final = (
    "*** Add File: ",
    "*** Update File: ",
    "*** Delete File: ",
    "*** Move to: ",
)
_SHELLS: Final = frozenset({"bash", "sh", "zsh", "/bin/bash", "/bin/sh", "/bin/zsh"})


def _path(value: object) -> tuple[str, ...]:
    return (bounded(value, PATH_LIMIT),) if isinstance(value, str) and value else ()


def _command(value: object) -> str | None:
    """A shell command given as a string or an argv list (``bash -lc SCRIPT`` gives SCRIPT)."""
    if isinstance(value, str):
        return bounded(value, PATH_LIMIT) if value else None
    if isinstance(value, list) and value and all(isinstance(part, str) for part in value):
        if len(value) == 3 and value[0] in _SHELLS and value[1] in ("-c", "-lc"):
            return bounded(value[2], PATH_LIMIT)
        return bounded(shlex.join(value[:1000]), PATH_LIMIT)
    return None


def claude_tool_effects(tool: str, tool_input: object) -> tuple[tuple[str, ...], str | None]:
    """The files a Claude Code tool call writes and the command it runs: ``(paths, command)``."""
    if not isinstance(tool_input, Mapping):
        return (), None
    if tool == "Bash":
        return (), _command(tool_input.get("command"))
    key = _CLAUDE_PATH_KEYS.get(tool)
    return (_path(tool_input.get(key)) if key else ()), None


def patch_paths(patch: str) -> tuple[str, ...]:
    """The files an ``apply_patch`` patch adds, updates, deletes or moves to, in order, once each."""
    found: dict[str, None] = {}
    for line in patch.splitlines():
        for header in _PATCH_HEADERS:
            if line.startswith(header) and (name := line[len(header) :].strip()):
                found.setdefault(bounded(name, PATH_LIMIT))
                break
        if len(found) >= MAX_PATHS:
            break
    return tuple(found)


def codex_tool_effects(tool: str, arguments: object) -> tuple[tuple[str, ...], str | None]:
    """The files a Codex tool call writes and the command it runs: ``(paths, command)``.

    ``arguments`` is the call's ``arguments`` string (JSON), a custom tool's raw ``input`` string,
    or an already decoded object.
    """
    decoded = arguments
    if isinstance(arguments, str) and arguments.lstrip().startswith("{"):
        try:
            decoded = json.loads(arguments)
        except (ValueError, RecursionError):
            decoded = arguments
    if tool == "apply_patch":
        patch = decoded.get("input") if isinstance(decoded, Mapping) else decoded
        return (patch_paths(patch) if isinstance(patch, str) else ()), None
    if not isinstance(decoded, Mapping):
        return (), None
    if tool in ("shell", "container.exec", "shell_command", "local_shell"):
        argv = decoded.get("command")
        if isinstance(argv, list) and len(argv) == 2 and argv[0] == "apply_patch":
            patch = argv[1]  # the patch tool called through the shell (older Codex)
            return (patch_paths(patch) if isinstance(patch, str) else ()), _command(argv[:1])
        return (), _command(argv)
    if tool == "exec_command":
        return (), _command(decoded.get("cmd"))
    return (), None
