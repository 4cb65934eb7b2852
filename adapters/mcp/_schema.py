"""JSON schemas of the MCP tools, made from the msgspec structs that already define the control
operations and the shapes of their answers: one definition of every field, its type and its limits.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = ["object_schema"]


def object_schema(t: type[msgspec.Struct], hints: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The schema of struct ``t`` as an object schema at the top (MCP wants ``"type": "object"``
    there, not a ``$ref``), other definitions kept under ``$defs``; ``hints`` describe fields (a
    hint for a field ``t`` lacks is left out)."""
    raw = msgspec.json.schema(t)
    defs: dict[str, Any] = dict(raw.get("$defs", {}))
    name = raw["$ref"].rsplit("/", 1)[-1]
    top: dict[str, Any] = copy.deepcopy(defs.pop(name))
    top.pop("title", None)
    properties: dict[str, Any] = top.setdefault("properties", {})
    for field, text in (hints or {}).items():
        if field in properties:
            properties[field]["description"] = text
    if defs:
        top["$defs"] = defs
    return top
