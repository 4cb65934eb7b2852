"""Retention, on every memory store: messages and superseded decisions older than what a
:class:`engine.MemoryRetention` keeps are swept (in batches), everything else stays."""

from __future__ import annotations

import pytest
from contracts.backends import MemoriesBackend

import engine
from engine import RETAINED_DECISIONS, RETAINED_MESSAGES, MemoryRetention, NewDecision, NewMessage

DAY = 86400.0


async def test_messages_older_than_their_retention_are_swept_in_batches(
    memories: MemoriesBackend,
) -> None:
    async with memories.open_store() as store:
        await store.add_messages("s", [NewMessage("user", f"old note {i}") for i in range(23)])
        await memories.age(3 * DAY)
        await store.add_messages("s", [NewMessage("user", f"new note {i}") for i in range(4)])

        kept = await store.sweep_expired()  # no retention: messages are kept forever
        assert kept.deleted.get(RETAINED_MESSAGES, 0) == 0
        assert len(await store.get_messages("s")) == 27

        # a batch of 5 rows: the sweep goes on until none is left (23 = 4 full batches + 3)
        report = await store.sweep_expired(MemoryRetention(messages=2 * DAY, batch=5))
        assert report.deleted[RETAINED_MESSAGES] == 23
        assert report.total == 23
        assert [m.content for m in await store.get_messages("s")] == [
            f"new note {i}" for i in range(4)
        ]
        again = await store.sweep_expired(MemoryRetention(messages=2 * DAY, batch=5))
        assert again.deleted[RETAINED_MESSAGES] == 0


async def test_superseded_decisions_older_than_their_retention_are_swept(
    memories: MemoriesBackend,
) -> None:
    async with memories.open_store() as store:
        old_open = await store.add_decision(NewDecision("keep the open one", session_id="s"))
        first = await store.add_decision(NewDecision("use a hash embedder", session_id="s"))
        second = await store.supersede_decision(first.id, NewDecision("use wordllama"))
        await memories.age(100 * DAY)
        third = await store.supersede_decision(second.id, NewDecision("use wordllama l2"))

        retention = MemoryRetention(superseded_decisions=90 * DAY, messages=None)
        report = await store.sweep_expired(retention)
        # first was superseded 100 days ago; second only now; open and current ones stay
        assert report.deleted[RETAINED_DECISIONS] == 1
        assert report.deleted[RETAINED_MESSAGES] == 0
        with pytest.raises(engine.MemoryNotFoundError):
            await store.get_decision(first.id)
        assert (await store.get_decision(old_open.id)).status is engine.DecisionStatus.OPEN
        assert [d.id for d in await store.decision_chain(third.id)] == [second.id, third.id]
        assert (await store.sweep_expired(retention)).deleted[RETAINED_DECISIONS] == 0


def test_a_retention_is_positive_seconds_or_none() -> None:
    for bad in ({"messages": 0}, {"superseded_decisions": -1.0}, {"batch": 0}):
        with pytest.raises(engine.InvalidArgumentError):
            MemoryRetention(**bad)  # type: ignore[arg-type]
    assert MemoryRetention().messages is None  # messages are kept forever by default
