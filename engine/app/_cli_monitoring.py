"""``scribe monitoring [on|off]``: say whether the daemon's monitoring runs, or switch it while the
daemon runs (the metric history, the latency histograms and the alerts; the configuration's
``monitoring`` setting is what a restart goes back to)."""

from __future__ import annotations

import argparse

from ._cli_control import call, common_arguments, print_json, refusals
from ._cli_render import console, literal

__all__ = ["monitoring_arguments", "run_monitoring"]


def monitoring_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``scribe monitoring``."""
    p.add_argument(
        "switch",
        nargs="?",
        choices=("on", "off"),
        help="switch it on or off (left out: only say whether it runs)",
    )
    common_arguments(p)


@refusals
def run_monitoring(args: argparse.Namespace) -> int:
    """Ask the daemon to switch its monitoring (if ``args.switch``) and say whether it runs."""
    params = {} if args.switch is None else {"enabled": args.switch == "on"}
    answer = call(args, "monitoring", params)
    if args.json:
        print_json(answer)
        return 0
    word = "on" if answer["enabled"] else "off"
    console().print(literal("monitoring is ", (word, "bold")))
    return 0
