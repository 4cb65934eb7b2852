"""The heuristic summarizer: notes sorted by their wording, commits and pushes as progress. No trio.

The record it makes is :class:`engine.Summary` (``engine/_ports/_summary_record.py``), the protocol it
implements :class:`engine.Summarizer` (``engine/_ports/_summarizer.py``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final

from .._core._errors import InvalidArgumentError
from .._ports._summary_record import Summary
from .._ports._worklog_records import EntryKind, WorklogEntry

__all__ = ["HeuristicSummarizer"]

_LIMITS: Final = {"key_ideas": 20, "decisions": 20, "progress": 30, "next_steps": 15}
_MAX_FILES: Final = 200
_MAX_ITEM: Final = 300


_DECISION = re.compile(
    r"^(?:decision|decided|decide|we decided|chose|choose|going with|go with|use .+ instead|"
    r"settled on|agreed)\b[:\s-]*",
    re.IGNORECASE,
)
_NEXT = re.compile(
    r"^(?:next(?: step)?s?|todo|to do|to-do|follow[- ]up|later|then|need to|needs to|must|should)\b[:\s-]*|"
    r"^-?\s*\[ \]\s*",
    re.IGNORECASE,
)
_DONE = re.compile(
    r"^(?:done|fixed|implemented|finished|completed|added|removed|refactored)\b[:\s-]*|^-?\s*\[x\]\s*",
    re.IGNORECASE,
)
_IDEA = re.compile(
    r"^(?:idea|note|insight|observation|maybe|what if|consider|learned|til|found)\b[:\s-]*",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?=\S)")


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ITEM else text[: _MAX_ITEM - 1] + "…"


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def classify_note_line(line: str) -> tuple[str, str] | None:
    """Which summary list a note line belongs to, and its text without the marker.

    Returns ``("decisions" | "next_steps" | "progress" | "key_ideas", text)``, or None for a blank line.
    """
    raw = line.strip()
    if not raw:
        return None
    checkbox = raw.lstrip("-*+ ")
    if checkbox.lower().startswith("[x]"):
        return "progress", _clip(checkbox[3:].strip())
    if checkbox.startswith("[ ]"):
        return "next_steps", _clip(checkbox[3:].strip())
    text = _BULLET.sub("", raw)
    for rx, where in ((_DECISION, "decisions"), (_NEXT, "next_steps"), (_DONE, "progress")):
        m = rx.match(text)
        if m:
            rest = text[m.end() :].strip() if where != "progress" else text.strip()
            if where == "progress":
                rest = re.sub(r"^done\b[:\s-]*", "", rest, flags=re.IGNORECASE)
            return where, _clip(rest or text)
    m = _IDEA.match(text)
    if m and text[m.end() :].strip():
        return "key_ideas", _clip(text[m.end() :].strip())
    return "key_ideas", _clip(text)


def _push(items: list[str], item: str, limit: int) -> None:
    if not item:
        return
    key = _norm(item)
    items[:] = [x for x in items if _norm(x) != key]
    items.append(item)
    if len(items) > limit:
        del items[: len(items) - limit]


class HeuristicSummarizer:
    """A summarizer with no model: notes are sorted by their wording (``Decision:``, ``Next:``,
    ``- [ ]``, ``Done:`` ...), commits and pushes are progress, file entries count touches.

    Deterministic and cheap (linear in the new entries), so it runs inline in the pipeline.
    """

    async def summarize(
        self,
        session_id: str,
        previous: Summary | None,
        entries: Sequence[WorklogEntry],
        *,
        final: bool = False,
    ) -> Summary:
        """Fold ``entries`` into ``previous``. Cancellation: nothing happens; this call never waits."""
        return self.fold(session_id, previous, entries, final=final)

    def fold(
        self,
        session_id: str,
        previous: Summary | None,
        entries: Sequence[WorklogEntry],
        *,
        final: bool = False,
        now: float | None = None,
    ) -> Summary:
        """The synchronous body of :meth:`summarize`."""
        prev = previous
        lists: dict[str, list[str]] = {
            "key_ideas": list(prev.key_ideas) if prev else [],
            "decisions": list(prev.decisions) if prev else [],
            "progress": list(prev.progress) if prev else [],
            "next_steps": list(prev.next_steps) if prev else [],
        }
        meta: dict[str, Any] = dict(prev.metadata) if prev else {}
        touches: dict[str, int] = dict(meta.get("file_touches", {}))
        deleted: set[str] = set(meta.get("files_deleted", ()))
        counts: dict[str, int] = {
            k: int(meta.get(k, 0))
            for k in ("entries", "commits", "notes", "file_changes", "pushes", "tool_calls")
        }
        last_seq = prev.last_seq if prev else 0
        for e in sorted(entries, key=lambda x: x.seq):
            if e.session_id != session_id:
                raise InvalidArgumentError(
                    f"entry {e.seq} belongs to session {e.session_id!r}, not {session_id!r}"
                )
            if e.seq <= last_seq:
                continue
            last_seq = e.seq
            counts["entries"] += 1
            p = e.payload
            if e.kind is EntryKind.SESSION_START:
                meta.setdefault("started_at", e.created_at)
                for key in ("branch", "backlog_id", "name", "kind"):
                    if p.get(key) is not None:
                        meta[key] = p[key]
            elif e.kind is EntryKind.NOTE:
                counts["notes"] += 1
                for line in str(p.get("text", "")).splitlines():
                    got = classify_note_line(line)
                    if got is None:
                        continue
                    where, text = got
                    _push(lists[where], text, _LIMITS[where])
                    if where == "progress":
                        key = _norm(text)
                        lists["next_steps"] = [x for x in lists["next_steps"] if _norm(x) != key]
            elif e.kind is EntryKind.FILES:
                counts["file_changes"] += 1
                for path in (*p.get("created", ()), *p.get("modified", ())):
                    touches[str(path)] = touches.get(str(path), 0) + 1
                    deleted.discard(str(path))
                for pair in p.get("moved", ()):
                    if len(pair) == 2:
                        old, new = str(pair[0]), str(pair[1])
                        touches[new] = touches.pop(old, 0) + 1
                        deleted.discard(new)
                for path in p.get("deleted", ()):
                    touches[str(path)] = touches.get(str(path), 0) + 1
                    deleted.add(str(path))
            elif e.kind is EntryKind.TOOL:
                counts["tool_calls"] += 1
                for path in p.get("paths", ()):
                    touches[str(path)] = touches.get(str(path), 0) + 1
            elif e.kind is EntryKind.COMMIT:
                counts["commits"] += 1
                short = str(p.get("hash", ""))[:8]
                subject = _clip(str(p.get("subject", "")))
                _push(lists["progress"], f"Committed {short}: {subject}", _LIMITS["progress"])
                done_key = _norm(subject)
                lists["next_steps"] = [x for x in lists["next_steps"] if _norm(x) != done_key]
                for path in p.get("files", ()):
                    touches.setdefault(str(path), 1)
                meta["head"] = p.get("hash")
            elif e.kind is EntryKind.PUSH:
                counts["pushes"] += 1
                _push(
                    lists["progress"],
                    f"Pushed {p.get('branch') or 'HEAD'} to {p.get('upstream') or 'its upstream'}",
                    _LIMITS["progress"],
                )
            elif e.kind is EntryKind.BRANCH_SWITCH:
                _push(
                    lists["progress"],
                    f"Switched branch {p.get('from') or '(detached)'} -> {p.get('to') or '(detached)'}",
                    _LIMITS["progress"],
                )
                meta["branch"] = p.get("to")
            elif e.kind is EntryKind.SESSION_STOP:
                meta["end_reason"] = p.get("reason")
                meta["ended_at"] = e.created_at
            meta["updated_at"] = e.created_at
        files = sorted(touches, key=lambda f: (-touches[f], f))
        if len(files) > _MAX_FILES:
            for f in files[_MAX_FILES:]:
                touches.pop(f, None)
            files = files[:_MAX_FILES]
        meta.update(counts)
        meta["last_seq"] = last_seq
        meta["file_touches"] = {f: touches[f] for f in files}
        meta["files_deleted"] = sorted(deleted & set(files))
        meta["final"] = bool(final)
        if final and not lists["next_steps"] and counts["file_changes"] and not counts["commits"]:
            _push(lists["next_steps"], "Commit the changed files", _LIMITS["next_steps"])
        return Summary(
            session_id=session_id,
            version=(prev.version + 1) if prev else 1,
            created_at=time.time() if now is None else now,
            key_ideas=tuple(lists["key_ideas"]),
            decisions=tuple(lists["decisions"]),
            progress=tuple(lists["progress"]),
            next_steps=tuple(lists["next_steps"]),
            files_modified=tuple(files),
            metadata=meta,
        )


def summary_changed(before: Summary | None, after: Summary) -> bool:
    """Whether ``after`` says anything ``before`` did not (ignoring version and time)."""
    if before is None:
        return True
    return replace(before, version=after.version, created_at=after.created_at) != after
