"""What ``recall`` answers for each record it found: a JSON-ready dict per message, decision and
fact, cut down when one alone is too large for the answer."""

from __future__ import annotations

import json
from typing import Any, Final

import adapters

from .._core._limits import preview
from .._ports._memory_records import ContextFact, Decision, Message

__all__ = ["RECALL_BYTES", "clipped", "decision_dict", "fact_dict", "fact_text", "message_dict"]

#: A recall answer stops growing past this many bytes of JSON (well under the control line limit).
RECALL_BYTES: Final = adapters.MAX_CONTROL_LINE // 2
#: A hit too large for :data:`RECALL_BYTES` on its own has its strings cut to this many characters.
_HIT_CLIP: Final = 4096


def fact_text(fact: ContextFact) -> str:
    """A fact's value as text (JSON with sorted keys when it is not a string)."""
    return fact.value if isinstance(fact.value, str) else json.dumps(fact.value, sort_keys=True)


def message_dict(m: Message) -> dict[str, Any]:
    """A message as ``recall`` answers it."""
    return {
        "kind": "message",
        "id": m.id,
        "session_id": m.session_id,
        "text": m.content,
        "seq": m.seq,
        "role": m.role.value,
        "created_at": m.created_at.isoformat(),
    }


def decision_dict(d: Decision) -> dict[str, Any]:
    """A decision as ``recall`` and ``decide`` answer it."""
    return {
        "kind": "decision",
        "id": d.id,
        "session_id": d.session_id,
        "text": d.title,
        "title": d.title,
        "body": d.body,
        "status": d.status.value,
        "superseded_by": d.superseded_by,
        "files": list(d.files),
        "entities": list(d.entities),
        "created_at": d.created_at.isoformat(),
    }


def fact_dict(fact: ContextFact) -> dict[str, Any]:
    """A fact as ``recall`` answers it."""
    return {
        "kind": "fact",
        "id": f"{fact.fact_type}/{fact.key}",
        "session_id": fact.session_id,
        "text": fact_text(fact),
        "fact_type": fact.fact_type,
        "key": fact.key,
        "pinned": fact.pinned,
        "updated_at": fact.updated_at.isoformat(),
    }


def clipped(hit: dict[str, Any]) -> dict[str, Any]:
    """``hit`` with its strings cut to :data:`_HIT_CLIP` characters and its lists to 20 items of
    200 characters, marked ``truncated``."""
    out: dict[str, Any] = {}
    for name, value in hit.items():
        if isinstance(value, str):
            value = preview(value, _HIT_CLIP)[0]
        elif isinstance(value, list):
            value = [preview(v, 200)[0] if isinstance(v, str) else v for v in value[:20]]
        out[name] = value
    out["truncated"] = True
    return out
