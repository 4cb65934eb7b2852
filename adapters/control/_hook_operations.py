"""The agent hook control operation: an agent's hook input handed to the daemon as it came. Imports
no trio.

The light ``scribe hook <agent>`` process reads the agent's hook input and sends it here unchanged;
the daemon checks the fields it uses (their types and sizes) itself, since an agent's hook input
has more fields than Scribe reads and gains new ones. The whole request is one control line, so at
most :data:`~adapters.MAX_CONTROL_LINE` bytes.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

from engine import LIST_MAX

__all__ = ["HOOK_OPERATIONS", "HookAgent", "HookArgs"]

#: The agents whose hooks the daemon understands.
HookAgent = Literal["claude-code"]


class HookArgs(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """An agent's hook fired: ``payload`` is its hook input (JSON on the hook's standard input).

    Answers ``{"additional_context": str | null}``: what the agent is to be told (a briefing at
    session start), or null. An event the daemon does not act on is answered with null; a payload
    whose fields have the wrong type or size is refused with a typed error, never half acted on.
    """

    agent: HookAgent
    payload: Annotated[
        dict[str, Any],
        msgspec.Meta(max_length=LIST_MAX, description="the agent's hook input, as it came"),
    ]


#: The hook operation by its name on the wire.
HOOK_OPERATIONS: Final[dict[str, type[HookArgs]]] = {"hook": HookArgs}
