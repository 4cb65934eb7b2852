"""Scribe's hooks in Claude Code's settings: where the settings files are, and the pure edits of
their ``hooks`` object that add Scribe's hooks or take them out again. Imports no trio.

The format, from Claude Code's public documentation (hooks reference
https://code.claude.com/docs/en/hooks, formerly https://docs.anthropic.com/en/docs/claude-code/hooks;
settings https://code.claude.com/docs/en/settings):

- Settings files, by scope: user ``~/.claude/settings.json``, project
  ``<project>/.claude/settings.json`` (shared, committed), local ``<project>/.claude/settings.local.json``
  (personal, not committed). Each holds one JSON object; hooks live under its ``"hooks"`` key.
- ``"hooks"`` maps an event name (``"SessionStart"``, ``"PostToolUse"``, ...) to a list of matcher
  groups ``{"matcher": "Edit|Write", "hooks": [{"type": "command", "command": "...",
  "timeout": 10}]}``. ``matcher`` is a regular expression over tool names for the tool events;
  events that do not filter (``UserPromptSubmit``, ``Stop``) take no matcher, and an omitted matcher
  matches everything. ``command`` runs in a shell with the event's JSON payload on stdin;
  ``timeout`` is in seconds (Claude Code's default for a command hook is 60 s in older releases,
  600 s in newer ones).

Scribe's own handlers are recognised by their command: a ``"command"`` handler whose command, split
as a shell would split it, ends in the words ``hook claude-code`` (see :func:`is_scribe_hook`).
Nothing else is ever changed: other groups, and other handlers in a group Scribe's handler shares,
keep their place and their content; every key other than ``"hooks"`` is left as it is, in its order.
"""

from __future__ import annotations

import copy
import enum
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from engine import InvalidArgumentError, ScribeError

__all__ = [
    "CLAUDE_CODE_HOOKS",
    "HOOK_TIMEOUT_SECONDS",
    "MAX_HOOK_COMMAND",
    "ClaudeSettingsError",
    "HookSpec",
    "SettingsFormatError",
    "SettingsScope",
    "hook_command",
    "install_hooks",
    "is_scribe_hook",
    "settings_path",
    "uninstall_hooks",
]

#: Seconds Claude Code gives each of Scribe's hooks before it cancels it: well below Claude Code's
#: own default (60 s, 600 s in newer releases). The hook command keeps its own hard deadline below it.
HOOK_TIMEOUT_SECONDS: Final = 10

#: The longest hook command accepted, in characters.
MAX_HOOK_COMMAND: Final = 4096

#: The words a command ends with when it runs Scribe's hook for Claude Code.
_HOOK_WORDS: Final = ("hook", "claude-code")

#: The tools whose calls Scribe's ``PostToolUse`` hook records (edits, writes, shell commands).
_EDIT_TOOLS: Final = "Edit|Write|MultiEdit|NotebookEdit|Bash"


class ClaudeSettingsError(ScribeError):
    """Root of the errors raised while reading or editing Claude Code's settings."""


class SettingsFormatError(ClaudeSettingsError, ValueError):
    """A settings file, or its ``hooks`` object, is not what Claude Code's format says; it is left
    as it is.

    Attributes:
        path: the file, when the error is about one (None for a settings object alone).
        detail: what is wrong, in words.
    """

    def __init__(self, detail: str, path: Path | None = None) -> None:
        super().__init__(f"{path}: {detail}" if path is not None else detail)
        self.path = path
        self.detail = detail


class SettingsScope(enum.StrEnum):
    """Which of Claude Code's settings files: for every project, shared with a project, or personal."""

    USER = "user"
    PROJECT = "project"
    LOCAL = "local"


@dataclass(frozen=True, slots=True)
class HookSpec:
    """One of Scribe's hooks: the event, the matcher its group has, and its timeout.

    Attributes:
        event: Claude Code's event name (``"PostToolUse"``).
        matcher: the group's matcher, or None for a group without one (it matches everything).
        timeout: seconds Claude Code waits for the command before cancelling it.
    """

    event: str
    matcher: str | None = None
    timeout: int = HOOK_TIMEOUT_SECONDS


#: Scribe's hooks, in the order they are added to a settings file that has none of their events.
CLAUDE_CODE_HOOKS: Final[tuple[HookSpec, ...]] = (
    HookSpec("SessionStart"),
    HookSpec("UserPromptSubmit"),
    HookSpec("PostToolUse", _EDIT_TOOLS),
    HookSpec("PreCompact"),
    HookSpec("Stop"),
    HookSpec("SessionEnd"),
)


def settings_path(scope: SettingsScope | str, *, home: Path, project: Path | None = None) -> Path:
    """The settings file of ``scope``: ``home/.claude/settings.json`` for the user,
    ``project/.claude/settings.json`` or ``project/.claude/settings.local.json`` for a project.

    Raises:
        InvalidArgumentError: an unknown scope, or a project scope without ``project``.
    """
    try:
        which = SettingsScope(scope)
    except ValueError:
        raise InvalidArgumentError(
            f"unknown settings scope {str(scope)!r} (user, project or local)"
        ) from None
    if which is SettingsScope.USER:
        return home / ".claude" / "settings.json"
    if project is None:
        raise InvalidArgumentError(f"the {which.value} scope needs a project directory")
    name = "settings.json" if which is SettingsScope.PROJECT else "settings.local.json"
    return project / ".claude" / name


def hook_command(executable: str | Path) -> str:
    """The shell command that runs Scribe's Claude Code hook with ``executable`` (quoted for a
    POSIX shell): ``'/home/me/.local/bin/scribe' hook claude-code``, without quotes when none
    are needed."""
    return " ".join([shlex.quote(str(executable)), *_HOOK_WORDS])


def is_scribe_hook(handler: object) -> bool:
    """Whether ``handler`` (one entry of a group's ``"hooks"`` list) is one of Scribe's: a
    ``"command"`` handler whose command, split as a shell splits it, ends in ``hook claude-code``
    after a program (``/usr/bin/scribe hook claude-code``, ``'/opt/my tools/scribe' hook
    claude-code``)."""
    if not isinstance(handler, Mapping) or handler.get("type") != "command":
        return False
    command = handler.get("command")
    if not isinstance(command, str) or len(command) > MAX_HOOK_COMMAND:
        return False
    try:
        words = shlex.split(command)
    except ValueError:  # an unbalanced quote: not a command Scribe wrote
        return False
    return len(words) > len(_HOOK_WORDS) and tuple(words[-len(_HOOK_WORDS) :]) == _HOOK_WORDS


def _check_command(command: str) -> None:
    if not isinstance(command, str):
        raise InvalidArgumentError(f"a hook command is a str, not {type(command).__name__}")
    if len(command) > MAX_HOOK_COMMAND:
        raise InvalidArgumentError(
            f"a hook command is at most {MAX_HOOK_COMMAND} characters, not {len(command)}"
        )
    if any(c in command for c in "\n\r\0"):
        raise InvalidArgumentError("a hook command is one line without NUL characters")
    if not is_scribe_hook({"type": "command", "command": command}):
        raise InvalidArgumentError(
            f"a hook command ends in {' '.join(_HOOK_WORDS)!r} after the program (see hook_command)"
        )


def _is_group(group: object) -> bool:
    return isinstance(group, dict) and isinstance(group.get("hooks"), list)


def _group_matches(group: Mapping[str, Any], spec: HookSpec) -> bool:
    matcher = group.get("matcher")
    if spec.matcher is None:
        return matcher is None or matcher in ("", "*")
    return bool(matcher == spec.matcher)


def _install_event(groups: list[Any], spec: HookSpec, handler: dict[str, Any]) -> list[Any]:
    """``groups`` with exactly one of Scribe's handlers for ``spec``: the first one already in a
    group of the right matcher is replaced where it stands; any other of Scribe's is removed (and
    a group left empty by that removal with it); with none in place, a group of its own is added
    at the end."""
    target: tuple[int, int] | None = None
    for gi, group in enumerate(groups):
        if _is_group(group) and _group_matches(group, spec):
            hi = next((i for i, h in enumerate(group["hooks"]) if is_scribe_hook(h)), None)
            if hi is not None:
                target = (gi, hi)
                break
    out: list[Any] = []
    for gi, group in enumerate(groups):
        if not _is_group(group):
            out.append(group)
            continue
        kept: list[Any] = []
        removed = False
        for hi, h in enumerate(group["hooks"]):
            if (gi, hi) == target:
                kept.append(handler)
            elif is_scribe_hook(h):
                removed = True
            else:
                kept.append(h)
        if removed and not kept:
            continue
        out.append({**group, "hooks": kept})
    if target is None:
        new: dict[str, Any] = {} if spec.matcher is None else {"matcher": spec.matcher}
        new["hooks"] = [handler]
        out.append(new)
    return out


def _hooks_object(settings: Mapping[str, Any]) -> dict[str, Any] | None:
    if not isinstance(settings, Mapping):
        raise SettingsFormatError(f"settings are a JSON object, not {type(settings).__name__}")
    hooks = settings.get("hooks")
    if hooks is None:
        return None
    if not isinstance(hooks, dict):
        raise SettingsFormatError(f'"hooks" is an object, not {type(hooks).__name__}')
    return hooks


def _with_hooks(settings: Mapping[str, Any], hooks: dict[str, Any] | None) -> dict[str, Any]:
    """A deep copy of ``settings`` with ``hooks`` as its ``"hooks"`` (where it was, or last; None:
    without one)."""
    out = {k: copy.deepcopy(v) for k, v in settings.items() if k != "hooks" or hooks is not None}
    if hooks is not None:
        out["hooks"] = hooks
    return out


def install_hooks(
    settings: Mapping[str, Any],
    command: str,
    *,
    hooks: Sequence[HookSpec] = CLAUDE_CODE_HOOKS,
) -> dict[str, Any]:
    """``settings`` with Scribe's hooks running ``command`` (a new object; ``settings`` is not
    changed).

    Idempotent: installing twice gives what installing once gives. Installing again with another
    command (a moved ``scribe``) or timeout replaces Scribe's own handlers where they stand.
    Nobody else's handler is removed, moved or changed; events Scribe adds go last, in the order
    of ``hooks``.

    Args:
        settings: the settings object (a parsed settings file; ``{}`` for none).
        command: the shell command each hook runs; it ends in ``hook claude-code``
            (:func:`hook_command` builds it).
        hooks: Scribe's hooks (default :data:`CLAUDE_CODE_HOOKS`).

    Raises:
        InvalidArgumentError: ``command`` is too long, more than one line, or does not end in
            ``hook claude-code``.
        SettingsFormatError: ``"hooks"`` is not an object, or an event Scribe hooks is not a list.
    """
    _check_command(command)
    current = _hooks_object(settings)
    new_hooks: dict[str, Any] = copy.deepcopy(current) if current is not None else {}
    for spec in hooks:
        groups = new_hooks.get(spec.event, [])
        if not isinstance(groups, list):
            raise SettingsFormatError(
                f'"hooks.{spec.event}" is a list of matcher groups, not {type(groups).__name__}'
            )
        handler = {"type": "command", "command": command, "timeout": spec.timeout}
        new_hooks[spec.event] = _install_event(groups, spec, handler)
    return _with_hooks(settings, new_hooks)


def uninstall_hooks(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` without Scribe's hooks, in every event (a new object).

    Only Scribe's handlers (:func:`is_scribe_hook`) are removed; a group, an event list or the
    ``"hooks"`` object left empty by that removal goes too, and nothing else. After
    :func:`install_hooks` on settings with no Scribe hooks, this gives those settings back (except
    an empty ``"hooks"`` object or event list that was there before: it goes as well). Settings
    without Scribe's hooks come back unchanged.

    Raises:
        SettingsFormatError: ``settings`` is not an object.
    """
    current = _hooks_object(settings)
    if current is None:
        return copy.deepcopy(dict(settings))
    new_hooks: dict[str, Any] = {}
    for event, groups in current.items():
        if not isinstance(groups, list):
            new_hooks[event] = copy.deepcopy(groups)
            continue
        kept_groups: list[Any] = []
        removed_group = False
        for group in groups:
            if not _is_group(group) or not any(is_scribe_hook(h) for h in group["hooks"]):
                kept_groups.append(copy.deepcopy(group))
                continue
            kept = [copy.deepcopy(h) for h in group["hooks"] if not is_scribe_hook(h)]
            if kept:
                kept_groups.append({**copy.deepcopy(group), "hooks": kept})
            else:
                removed_group = True
        if kept_groups or not removed_group:
            new_hooks[event] = kept_groups
    if not new_hooks and current:
        return _with_hooks(settings, None)
    return _with_hooks(settings, new_hooks)
