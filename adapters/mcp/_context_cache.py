"""The last ``get_context`` answers, kept in the MCP server while the daemon's events say they hold.

An agent asks for its context again and again while the tree is unchanged; the daemon then answers
from its live cache, and the round trip to it is most of the call. This cache keeps such answers in
the MCP server and answers them again, for exactly as long as the daemon would give the same one:

- only an answer the daemon served wholly from its own cache, every source ``ok``, is kept (a
  gather that ran sources or failed may give another answer next time);
- it is kept only while the session's ``watch`` (shared with resource subscriptions) is open, and
  only if no event of any watched session arrived, and no watch opened or closed, while the call
  was on its way: the daemon publishes an event for everything that changes its answer (a worklog
  entry, a summary, a state change, a source dirtied by the watcher or the registry);
- any event of the session drops its answers, as does the watch closing (the daemon went away);
- an answer with ``fresh_for`` (a source with a ``max_age``) is dropped when that has passed.

What it can serve late is an event already published by the daemon and not yet read here: the
time one message takes on the local socket. At most :data:`CAPACITY` answers and as many watched
sessions are kept, the least recently used going first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, final

import msgspec
import trio

from ._watches import SessionWatches

__all__ = ["CAPACITY", "ContextCache"]

#: Answers (and watched sessions) kept at most.
CAPACITY: Final = 64


@dataclass(frozen=True, slots=True)
class _Answer:
    session_id: str
    served: Any  # what a lookup gives
    expires: float  # trio time; inf without fresh_for


def _keepable(answer: Any) -> tuple[str, float] | None:
    """The session id and lifetime of an answer worth keeping, or None."""
    if not isinstance(answer, Mapping) or answer.get("from_cache") is not True:
        return None
    session_id = answer.get("session_id")
    sources = answer.get("sources")
    if not isinstance(session_id, str) or not isinstance(sources, Mapping):
        return None
    if not all(isinstance(s, Mapping) and s.get("status") == "ok" for s in sources.values()):
        return None
    fresh_for = answer.get("fresh_for")
    if fresh_for is None:
        return session_id, float("inf")
    if isinstance(fresh_for, int | float) and not isinstance(fresh_for, bool) and fresh_for > 0:
        return session_id, float(fresh_for)
    return None


@final
class ContextCache:
    """``get_context`` answers by their arguments, invalidated by the daemon's events.

    Args:
        watches: the MCP server's session watches (the cache holds a watch on each session it
            keeps answers of, and observes every watched session's events).
    """

    def __init__(self, watches: SessionWatches) -> None:
        self._watches = watches
        self._answers: OrderedDict[bytes, _Answer] = OrderedDict()
        self._held: OrderedDict[str, None] = OrderedDict()
        self._seen = 0  # events seen (and watches opened or closed), of any session
        self.hits = 0
        watches.observe(self._event)

    def _event(self, session: str, event: Mapping[str, Any] | None) -> None:
        self._seen += 1
        for key in [k for k, a in self._answers.items() if a.session_id == session]:
            del self._answers[key]

    @staticmethod
    def key(args: Mapping[str, Any]) -> bytes:
        """The cache key of a call's arguments (as sent to the daemon)."""
        return msgspec.json.encode(dict(sorted(args.items())))

    def mark(self) -> int:
        """Taken before asking the daemon; :meth:`offer` keeps nothing if anything was seen since."""
        return self._seen

    def lookup_nowait(self, key: bytes) -> Any | None:
        """The kept answer for ``key``, or None."""
        answer = self._answers.get(key)
        if answer is None:
            return None
        if trio.current_time() >= answer.expires or not self._watches.is_open(answer.session_id):
            del self._answers[key]
            return None
        self._answers.move_to_end(key)
        self._held.move_to_end(answer.session_id)
        self.hits += 1
        return answer.served

    def offer_nowait(self, key: bytes, answer: Any, mark: int, *, served: Any = None) -> None:
        """Keep ``answer`` if it may be given again (see the module docstring); else watch its
        session so that a later one can be kept. A lookup gives back ``served`` (the answer as
        served, made once) or, without it, ``answer``."""
        found = _keepable(answer)
        if found is None:
            return
        session_id, lifetime = found
        self._hold(session_id)
        if mark != self._seen or not self._watches.is_open(session_id):
            return
        kept = answer if served is None else served
        self._answers[key] = _Answer(session_id, kept, trio.current_time() + lifetime)
        self._answers.move_to_end(key)
        while len(self._answers) > CAPACITY:
            self._answers.popitem(last=False)

    def _hold(self, session_id: str) -> None:
        if session_id in self._held:
            self._held.move_to_end(session_id)
            return
        self._held[session_id] = None
        self._watches.acquire(session_id)
        while len(self._held) > CAPACITY:
            dropped, _ = self._held.popitem(last=False)
            self._watches.release(dropped)
            self._event(dropped, None)
