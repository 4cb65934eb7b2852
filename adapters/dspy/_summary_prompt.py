"""What the language model is asked for a summary, and how its answer is read back. No trio.

The prompt is the previous summary's lists plus the new worklog entries (kind and payload, one a
line; no times and no sequence numbers, so the same work is the same prompt) and whether the
session ended. Those three, as :func:`cache_prompt` writes them, are also the generation cache's
prompt, so the same previous summary and the same entries are one cache entry. The answer is kept as canonical JSON of the four lists, each item cut to
:data:`ITEM_MAX` characters and each list to its limit (the heuristic summarizer's), scrubbed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import dspy

from engine import Privacy, Summary, WorklogEntry, canonical_json

__all__ = [
    "ENTRY_MAX",
    "ITEM_MAX",
    "LIST_LIMITS",
    "PROMPT_MAX",
    "AnswerError",
    "SummarizeWorklog",
    "answer_json",
    "cache_prompt",
    "read_answer",
    "render_entries",
    "render_previous",
]

#: The lists the model writes, with the most items each may keep (as the heuristic summarizer).
LIST_LIMITS: Final[Mapping[str, int]] = {
    "key_ideas": 20,
    "decisions": 20,
    "progress": 30,
    "next_steps": 15,
}
#: The most characters of one item of the model's lists.
ITEM_MAX: Final = 300
#: The most characters of one worklog entry in the prompt.
ENTRY_MAX: Final = 2_000
#: The most characters of the worklog part of the prompt (the newest entries are kept).
PROMPT_MAX: Final = 48_000


class AnswerError(ValueError):
    """The model's answer is not four lists of strings."""


class SummarizeWorklog(dspy.Signature):  # type: ignore[misc]  # dspy ships no type information
    """Fold the new worklog entries of a coding session into its previous summary.

    Return each list whole (the previous items that still hold, then the new ones), short items in
    plain words, nothing invented: only what the summary or the entries say.
    """

    previous_summary: str = dspy.InputField(desc="the summary so far, one list a section")
    worklog: str = dspy.InputField(desc="the new worklog entries, one a line: kind, then payload")
    session_ended: bool = dspy.InputField(desc="whether the session has ended")
    key_ideas: list[str] = dspy.OutputField(desc="ideas and observations worth remembering")
    decisions: list[str] = dspy.OutputField(desc="choices made, each with its reason if given")
    progress: list[str] = dspy.OutputField(desc="what was done, oldest first")
    next_steps: list[str] = dspy.OutputField(desc="what is still to do")


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_previous(previous: Summary | None) -> str:
    """The previous summary's lists as the prompt shows them (``(none)`` for the first one)."""
    if previous is None:
        return "(none)"
    sections = []
    for name in LIST_LIMITS:
        items: Sequence[str] = getattr(previous, name)
        lines = "\n".join(f"- {item}" for item in items) or "(empty)"
        sections.append(f"{name}:\n{lines}")
    return "\n\n".join(sections)


def render_entries(entries: Sequence[WorklogEntry]) -> str:
    """The entries, oldest first, one a line; the oldest are left out past :data:`PROMPT_MAX`."""
    lines = [
        _clip(f"{e.kind.value}: {canonical_json(dict(e.payload))}", ENTRY_MAX)
        for e in sorted(entries, key=lambda e: e.seq)
    ]
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        size += len(line) + 1
        if size > PROMPT_MAX:
            break
        kept.append(line)
    kept.reverse()
    if len(kept) < len(lines):
        kept.insert(0, f"({len(lines) - len(kept)} earlier entries left out)")
    return "\n".join(kept)


def cache_prompt(previous_summary: str, worklog: str, session_ended: bool) -> str:
    """The generation cache's prompt for these inputs of :class:`SummarizeWorklog`."""
    ended = "yes" if session_ended else "no"
    return f"previous summary:\n{previous_summary}\n\nworklog:\n{worklog}\n\nsession ended: {ended}"


def answer_json(prediction: Any, privacy: Privacy) -> str:
    """The model's prediction as the canonical JSON the cache keeps: cut, limited, scrubbed.

    Raises:
        AnswerError: a list is missing or holds something that is not a string.
    """
    lists: dict[str, list[str]] = {}
    for name, limit in LIST_LIMITS.items():
        value = getattr(prediction, name, None)
        if not isinstance(value, list | tuple) or not all(isinstance(x, str) for x in value):
            raise AnswerError(f"the answer's {name} is not a list of strings")
        items = [_clip(privacy.scrub(x), ITEM_MAX) for x in value]
        lists[name] = [x for x in items if x][-limit:]
    return canonical_json(lists)


def read_answer(text: str) -> dict[str, tuple[str, ...]]:
    """The four lists of a kept answer (see :func:`answer_json`).

    Raises:
        AnswerError: ``text`` is not such an answer.
    """
    try:
        data = json.loads(text)
    except ValueError:
        raise AnswerError("the kept answer is not JSON") from None
    if not isinstance(data, dict):
        raise AnswerError("the kept answer is not a JSON object")
    out: dict[str, tuple[str, ...]] = {}
    for name, limit in LIST_LIMITS.items():
        value = data.get(name)
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise AnswerError(f"the kept answer's {name} is not a list of strings")
        out[name] = tuple(_clip(x, ITEM_MAX) for x in value)[-limit:]
    return out
