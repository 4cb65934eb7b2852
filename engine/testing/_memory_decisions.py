"""The decisions of the in-memory memory store: records, supersession and chains (no trio)."""

from __future__ import annotations

import dataclasses
from typing import final

from .. import (
    Decision,
    DecisionStateError,
    DecisionStatus,
    MemoryNotFoundError,
    NewDecision,
    check_ttl,
)
from ._memory_rules import MemoryClock
from ._text_ranking import Vector

__all__ = ["DecisionTable"]


@final
class DecisionTable:
    """Decisions by id with their embeddings; every method runs to the end without yielding."""

    def __init__(self, clock: MemoryClock) -> None:
        self._clock = clock
        self.rows: dict[int, tuple[Decision, Vector | None]] = {}
        self._last_id = 0

    def insert(self, new: NewDecision, vector: Vector | None) -> Decision:
        """Store a new decision and return it."""
        self._last_id += 1
        now = self._clock.now()
        decision = Decision(
            id=self._last_id,
            session_id=new.session_id,
            title=new.title,
            body=new.body,
            status=DecisionStatus(new.status),
            superseded_by=None,
            entities=tuple(new.entities),
            files=tuple(new.files),
            created_at=now,
            updated_at=now,
            expires_at=self._clock.expiry(check_ttl(new.ttl)),
        )
        self.rows[decision.id] = (decision, vector)
        return decision

    def live(self, decision_id: int) -> Decision:
        """The live decision, else :class:`MemoryNotFoundError`."""
        stored = self.rows.get(decision_id)
        if stored is None or not self._clock.live(stored[0].expires_at):
            raise MemoryNotFoundError(f"no live decision {decision_id}")
        return stored[0]

    def _replace(self, decision: Decision) -> Decision:
        self.rows[decision.id] = (decision, self.rows[decision.id][1])
        return decision

    def close(self, decision_id: int) -> Decision:
        """Mark it closed (a closed one is unchanged, a superseded one refused)."""
        current = self.live(decision_id)
        if current.status is DecisionStatus.SUPERSEDED:
            raise DecisionStateError(f"decision {decision_id} is superseded; it cannot close")
        if current.status is DecisionStatus.CLOSED:
            return current
        return self._replace(
            dataclasses.replace(current, status=DecisionStatus.CLOSED, updated_at=self._clock.now())
        )

    def supersede(
        self, decision_id: int, replacement: NewDecision, vector: Vector | None
    ) -> Decision:
        """Store ``replacement`` (in the replaced decision's session unless it names one) and mark
        ``decision_id`` superseded by it; return the new decision."""
        current = self.live(decision_id)
        if current.status is DecisionStatus.SUPERSEDED:
            raise DecisionStateError(
                f"decision {decision_id} is already superseded; supersede its successor"
            )
        if replacement.session_id is None:
            replacement = dataclasses.replace(replacement, session_id=current.session_id)
        new = self.insert(replacement, vector)
        self._replace(
            dataclasses.replace(
                current,
                status=DecisionStatus.SUPERSEDED,
                superseded_by=new.id,
                updated_at=self._clock.now(),
            )
        )
        return new

    def chain(self, decision_id: int) -> list[Decision]:
        """The live decisions of the supersession chain through ``decision_id``, oldest first."""
        self.live(decision_id)
        replaced = {d.superseded_by: d.id for d, _ in self.rows.values() if d.superseded_by}
        back: list[int] = []
        current = replaced.get(decision_id)
        while current is not None and current not in back:
            back.append(current)
            current = replaced.get(current)
        ids = [*reversed(back), decision_id]
        following = self.rows[decision_id][0].superseded_by
        while following is not None and following in self.rows and following not in ids:
            ids.append(following)
            following = self.rows[following][0].superseded_by
        found = (self.rows[i][0] for i in ids)
        return [d for d in found if self._clock.live(d.expires_at)]
