"""The ``scribe`` console script's front door: ``scribe hook ...`` is answered here with the standard
library alone; every other command imports ``engine.app`` (and with it trio, the adapters and the
drivers) only then, and runs its ``main``."""

from __future__ import annotations

import sys

from ._hook import HOOK_AGENTS, run_hook

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing

if TYPE_CHECKING:  # no typing at run time: the hook command's start counts
    from collections.abc import Sequence
    from typing import Final

__all__ = ["main"]

_HOOK_USAGE: Final = (
    "usage: scribe hook AGENT\n\n"
    "Hand one hook event (JSON on stdin) of a coding agent to the scribe daemon; what the hooks\n"
    "that `scribe hooks install` writes run. Always exits 0 (failures go to <home>/logs/hooks.log;\n"
    "SCRIBE_HOOK_DEBUG=1 prints them on stderr too).\n\n"
    f"agents: {', '.join(HOOK_AGENTS)}\n"
)
#: The exit status of a malformed ``scribe hook`` command line: 1, never 2 (Claude Code reads 2
#: as "block the prompt or the tool call").
_EXIT_USAGE: Final = 1


def hook_main(argv: Sequence[str]) -> int:
    """``scribe hook AGENT``: :func:`~scribe_cli._hook.run_hook`, or its usage."""
    if list(argv) in (["-h"], ["--help"]):
        sys.stdout.write(_HOOK_USAGE)
        return 0
    if len(argv) != 1 or argv[0] not in HOOK_AGENTS:
        sys.stderr.write(_HOOK_USAGE)
        return _EXIT_USAGE
    return run_hook(argv[0])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scribe`` console script: ``scribe hook`` here, every other command
    through ``engine.app.main`` (imported only then; the same arguments and exit statuses)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["hook"]:
        return hook_main(args[1:])
    from engine.app import main as app_main

    return app_main(args)
