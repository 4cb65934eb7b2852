"""``scribe hooks install|uninstall claude-code``: Scribe's hooks in Claude Code's settings files.

Exit status: 0 done (or nothing to do), 1 refused (a settings file that is not JSON, a symlink, no
``scribe`` to run ...), 2 bad command line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Final

from adapters import (
    CLAUDE_CODE_HOOKS,
    ClaudeSettingsError,
    SettingsChange,
    SettingsScope,
    apply_settings_change,
    hook_command,
    install_hooks,
    settings_path,
    uninstall_hooks,
)

from .._core._errors import InvalidArgumentError
from .._core._literal import visible
from .._ports._fs import FileSystemError

__all__ = ["hooks_arguments", "run_hooks", "scribe_executable"]

EXIT_REFUSED: Final = 1

_AGENTS: Final = ("claude-code",)


def scribe_executable(argv0: str | None = None) -> Path | None:
    """The ``scribe`` program the hooks run: this process's own (``argv[0]`` made absolute) when
    it is a ``scribe`` executable, else the first ``scribe`` on ``PATH``; None when there is none.

    The path is kept as the user's shell finds it (a symlink such as ``~/.local/bin/scribe`` is not
    followed), so reinstalling the package behind it keeps the hooks working.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    if argv0:
        found = shutil.which(argv0) if os.sep not in argv0 else argv0
        if found is not None:
            candidate = Path(os.path.abspath(found))
            if candidate.name == "scribe" and candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    on_path = shutil.which("scribe")
    return Path(os.path.abspath(on_path)) if on_path is not None else None


def _project_root(start: Path) -> Path:
    """The top of the git work tree holding ``start`` (the nearest directory with a ``.git``), or
    ``start`` itself outside any."""
    start = Path(os.path.abspath(start))
    for directory in (start, *start.parents):
        if os.path.lexists(directory / ".git"):
            return directory
    return start


def hooks_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``scribe hooks``: ``install`` or ``uninstall``, the agent and the scope."""
    actions = p.add_subparsers(dest="hooks_action", metavar="ACTION", required=True)
    for action, help_text in (
        ("install", "add Scribe's hooks to the agent's settings (keeps every other hook)"),
        ("uninstall", "remove Scribe's hooks from the agent's settings (and nothing else)"),
    ):
        a = actions.add_parser(action, help=help_text, description=help_text)
        a.add_argument("agent", choices=_AGENTS, help="the coding agent (claude-code)")
        a.add_argument(
            "--scope",
            choices=[s.value for s in SettingsScope],
            default=SettingsScope.USER.value,
            help="user: ~/.claude/settings.json (default); project: PROJECT/.claude/settings.json;"
            " local: PROJECT/.claude/settings.local.json",
        )
        a.add_argument(
            "--project",
            type=Path,
            help="the project of --scope project/local (default: the git work tree of the"
            " current directory, else the current directory)",
        )
        a.add_argument(
            "--dry-run", action="store_true", help="print the change as a diff, write nothing"
        )
        if action == "install":
            a.add_argument(
                "--scribe",
                type=Path,
                help="the scribe program the hooks run (default: this one, else scribe on PATH)",
            )


def _path_of(args: argparse.Namespace) -> Path:
    scope = SettingsScope(args.scope)
    if scope is SettingsScope.USER:
        if args.project is not None:
            raise InvalidArgumentError("--project goes with --scope project or local")
        return settings_path(scope, home=Path.home())
    project = args.project if args.project is not None else _project_root(Path.cwd())
    if not project.is_dir():
        raise InvalidArgumentError(f"the project {project} is not a directory")
    return settings_path(scope, home=Path.home(), project=Path(os.path.abspath(project)))


def _command(args: argparse.Namespace) -> str:
    program = args.scribe if args.scribe is not None else scribe_executable()
    if program is None:
        raise InvalidArgumentError("no scribe program found on PATH: name it with --scribe PATH")
    program = Path(os.path.abspath(program))
    if not (program.is_file() and os.access(program, os.X_OK)):
        raise InvalidArgumentError(f"{program} is not an executable file")
    return hook_command(program)


def _report(args: argparse.Namespace, change: SettingsChange) -> None:
    where = visible(change.path)
    if args.dry_run:
        if change.changed:
            print(visible(change.diff(), multiline=True), end="")
        else:
            print(f"nothing to change in {where}")
        return
    events = ", ".join(spec.event for spec in CLAUDE_CODE_HOOKS)
    if args.hooks_action == "install":
        if change.changed:
            print(f"Scribe's hooks for Claude Code ({events}) are now in {where}")
        else:
            print(f"Scribe's hooks for Claude Code are already in {where}; nothing changed")
        if json.loads(change.after or "{}").get("disableAllHooks") is True:
            print(
                f"note: {where} sets disableAllHooks: Claude Code runs none of its hooks",
                file=sys.stderr,
            )
    elif change.changed:
        print(f"Scribe's hooks for Claude Code are removed from {where}")
    else:
        print(f"no Scribe hooks in {where}; nothing changed")


def run_hooks(args: argparse.Namespace) -> int:
    """Run ``scribe hooks install|uninstall claude-code``."""
    try:
        path = _path_of(args)
        if args.hooks_action == "install":
            command = _command(args)
            change = apply_settings_change(
                path, lambda s: install_hooks(s, command), dry_run=args.dry_run
            )
        else:
            change = apply_settings_change(path, uninstall_hooks, dry_run=args.dry_run)
    except (ClaudeSettingsError, FileSystemError, InvalidArgumentError) as exc:
        print(visible(f"scribe hooks {args.hooks_action}: {exc}"), file=sys.stderr)
        return EXIT_REFUSED
    _report(args, change)
    return 0
