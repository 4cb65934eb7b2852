"""``scribe adopt``: take over a session a gone daemon left orphaned (the daemons share a database)."""

from __future__ import annotations

import argparse

from ._cli_control import call, print_json, refusals
from ._cli_render import console, literal, state

__all__ = ["run_adopt"]


@refusals
def run_adopt(args: argparse.Namespace) -> int:
    """Ask this daemon to adopt the orphaned session ``args.session`` and say what it became."""
    rec = call(args, "adopt", {"session": args.session})
    if args.json:
        print_json(rec)
        return 0
    console().print(
        literal("session ", (rec["id"], "bold"), " is ", state(rec["state"]), " again, owned here")
    )
    return 0
