"""Property tests of the feed hub: resume exactness, conflation, bounded queues, frame limits."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import FeedHub, FeedPosition

ORDERED = ("worklog:a", "worklog:b", "context:a")
KEYS = ("s1", "s2", "s3")


@dataclass
class Receiver:
    """What a well-behaved client does with the frames it gets."""

    epoch: str = ""
    positions: dict[str, int] = field(default_factory=dict)
    seen: dict[str, list[int]] = field(default_factory=dict)
    state: dict[tuple[str, str], Any] = field(default_factory=dict)
    resyncs: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    recovered: dict[str, bool] = field(default_factory=dict)

    def absorb(self, frame: bytes) -> None:
        message = json.loads(frame)
        kind = message["type"]
        if kind == "events":
            for e in message["events"]:
                self.seen.setdefault(e["topic"], []).append(e["offset"])
                self.positions[e["topic"]] = e["offset"]
                if e["key"] is not None:
                    self.state[(e["topic"], e["key"])] = e["data"]
        elif kind == "snapshot":
            self.snapshots.append(message)
            self.positions[message["topic"]] = message["offset"]
            self.seen.setdefault(message["topic"], []).append(-1)  # a reset marker
            for e in message["events"]:
                if e["key"] is not None:
                    self.state[(e["topic"], e["key"])] = e["data"]
        elif kind == "resync":
            self.resyncs.append(message)
        elif kind == "subscribed":
            self.recovered[message["topic"]] = message["recovered"]
            self.epoch = message["epoch"]


def drain(hub: FeedHub, cid: int, receiver: Receiver, limit: int | None = None) -> int:
    n = 0
    while limit is None or n < limit:
        frame = hub.take(cid)
        if frame is None:
            break
        receiver.absorb(frame)
        n += 1
    return n


ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("publish"), st.sampled_from(ORDERED)),
        st.tuples(st.just("take"), st.integers(0, 5)),
        st.tuples(st.just("reconnect"), st.just(None)),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(ops=ops_strategy, history=st.integers(1, 30), max_frame=st.integers(1, 7))
def test_resume_is_exact_or_says_it_is_not(
    ops: list[tuple[str, Any]], history: int, max_frame: int
) -> None:
    """A client that disconnects and resumes from its positions sees every offset exactly once, in
    order, with no gap, unless the hub answered ``recovered: false`` and sent a snapshot; and the hub
    says ``recovered: false`` only when the history ring no longer holds what was missed."""
    hub = FeedHub(history_size=history, client_queue_size=10_000, max_frame_events=max_frame)
    receiver = Receiver()
    cid = hub.add_client()
    for topic in ORDERED:
        hub.subscribe(cid, topic)
    published: dict[str, int] = dict.fromkeys(ORDERED, 0)
    for op, arg in ops:
        if op == "publish":
            published[arg] += 1
            hub.publish(arg, {"n": published[arg]})
        elif op == "take":
            drain(hub, cid, receiver, arg)
        else:
            hub.remove_client(cid)
            cid = hub.add_client()
            for topic in ORDERED:
                pos = receiver.positions.get(topic)
                if pos is None:  # it never got its first answer: start afresh
                    assert hub.subscribe(cid, topic) is False
                    continue
                missed = published[topic] - pos
                recovered = hub.subscribe(cid, topic, since=FeedPosition(hub.epoch, pos))
                assert recovered == (missed <= history), (topic, missed, history)
    drain(hub, cid, receiver)
    for topic in ORDERED:
        segment: list[int] = []
        for offset in receiver.seen.get(topic, []):
            if offset == -1:
                segment = []
                continue
            expected = segment[-1] + 1 if segment else None
            if expected is not None:
                assert offset == expected, (topic, receiver.seen[topic])
            segment.append(offset)
        assert receiver.positions[topic] == published[topic]


@settings(max_examples=200, deadline=None)
@given(
    updates=st.lists(st.tuples(st.sampled_from(KEYS), st.integers()), max_size=200),
    takes=st.lists(st.integers(0, 40), max_size=5),
)
def test_state_topics_conflate_to_the_newest_value(
    updates: list[tuple[str, int]], takes: list[int]
) -> None:
    """A client that does not read holds at most one pending value per key, and when it reads it
    ends with exactly the newest value of every key; offsets it sees only increase."""
    hub = FeedHub(max_frame_events=3)
    receiver = Receiver()
    cid = hub.add_client()
    hub.subscribe(cid, "sessions")
    drain(hub, cid, receiver)
    newest: dict[str, int] = {}
    for i, (key, value) in enumerate(updates):
        hub.publish("sessions", {"v": value}, key=key)
        newest[key] = value
        assert hub.pending_events(cid) <= len(KEYS)
        if takes and i % 17 == 0:
            drain(hub, cid, receiver, takes[i % len(takes)])
    drain(hub, cid, receiver)
    assert receiver.state == {("sessions", k): {"v": v} for k, v in newest.items()}
    offsets = receiver.seen.get("sessions", [-1])[1:]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    # A client that reads nothing while the updates arrive then gets one value per key.
    before = len(receiver.seen.get("sessions", []))
    for key, value in updates:
        hub.publish("sessions", {"v": -value}, key=key)
    drain(hub, cid, receiver)
    assert len(receiver.seen.get("sessions", [])) - before == len(newest)
    assert receiver.state == {("sessions", k): {"v": -v} for k, v in newest.items()}


@settings(max_examples=200, deadline=None)
@given(
    queue=st.integers(1, 20),
    history=st.integers(1, 60),
    ops=st.lists(st.one_of(st.just(-1), st.integers(0, 4)), max_size=150),
)
def test_ordered_queues_are_bounded_and_resync_recovers(
    queue: int, history: int, ops: list[int]
) -> None:
    """An ordered topic never queues more than ``client_queue_size`` events for a client; past it
    the client is told to resync from the last offset it got, and resubscribing from there gives
    exactly the rest when the ring still holds it."""
    hub = FeedHub(history_size=history, client_queue_size=queue, max_frame_events=4)
    receiver = Receiver()
    cid = hub.add_client()
    topic = "worklog:x"
    hub.subscribe(cid, topic)
    drain(hub, cid, receiver)
    published = 0
    for op in ops:
        if op == -1:
            published += 1
            hub.publish(topic, {"n": published})
            assert hub.pending_events(cid) <= queue
        else:
            drain(hub, cid, receiver, op)
        if receiver.resyncs:
            notice = receiver.resyncs.pop()
            assert notice["offset"] == receiver.positions[topic]
            assert topic not in hub.subscriptions(cid)
            hub.subscribe(cid, topic, since=FeedPosition(notice["epoch"], notice["offset"]))
    drain(hub, cid, receiver)
    if receiver.resyncs:
        notice = receiver.resyncs.pop()
        hub.subscribe(cid, topic, since=FeedPosition(notice["epoch"], notice["offset"]))
        drain(hub, cid, receiver)
    assert receiver.positions[topic] == published
    segment: list[int] = []
    for offset in receiver.seen[topic]:
        if offset == -1:
            segment = []
            continue
        if segment:
            assert offset == segment[-1] + 1
        segment.append(offset)


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 300), min_size=1, max_size=60),
    max_events=st.integers(1, 10),
    max_bytes=st.integers(1, 2000),
)
def test_frames_respect_their_limits(sizes: list[int], max_events: int, max_bytes: int) -> None:
    """Every events frame holds at most ``max_frame_events`` events and grows past
    ``max_frame_bytes`` only by its last event; every event is delivered once."""
    hub = FeedHub(max_frame_events=max_events, max_frame_bytes=max_bytes, client_queue_size=1000)
    cid = hub.add_client()
    hub.subscribe(cid, "context:c")
    assert hub.take(cid) is not None and hub.take(cid) is not None  # subscribed, snapshot
    encoded = [hub.publish("context:c", {"pad": "x" * n}).encoded for n in sizes]
    got: list[int] = []
    while (frame := hub.take(cid)) is not None:
        events = json.loads(frame)["events"]
        assert 1 <= len(events) <= max_events
        assert sum(len(encoded[e["offset"] - 1]) for e in events[:-1]) < max_bytes
        got.extend(e["offset"] for e in events)
    assert got == list(range(1, len(sizes) + 1))


def test_other_epoch_or_future_offset_is_not_recovered() -> None:
    hub = FeedHub(epoch="e1")
    for i in range(3):
        hub.publish("worklog:a", {"i": i})
    cid = hub.add_client()
    assert hub.subscribe(cid, "worklog:a", since=FeedPosition("e0", 1)) is False
    assert hub.subscribe(cid, "worklog:a", since=FeedPosition("e1", 9)) is False
    assert hub.subscribe(cid, "worklog:a", since=FeedPosition("e1", 3)) is True
    assert hub.subscribe(cid, "worklog:a", since=FeedPosition("e1", 0)) is True


def test_session_scoped_client_sees_only_its_sessions() -> None:
    hub = FeedHub()
    hub.publish("sessions", {"id": "a"}, key="a")
    hub.publish("sessions", {"id": "b"}, key="b")
    cid = hub.add_client(sessions=["a"])
    hub.subscribe(cid, "sessions")
    hub.publish("sessions", {"id": "b", "v": 2}, key="b")
    hub.publish("sessions", {"id": "a", "v": 2}, key="a")
    receiver = Receiver()
    drain(hub, cid, receiver)
    assert [e["key"] for e in receiver.snapshots[0]["events"]] == ["a"]
    assert set(receiver.state) == {("sessions", "a")}
    assert receiver.state[("sessions", "a")] == {"id": "a", "v": 2}


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(0, 500), max_size=40), budget=st.integers(1, 3000))
def test_ordered_snapshots_are_the_newest_entries_within_budget(
    sizes: list[int], budget: int
) -> None:
    hub = FeedHub(max_snapshot_bytes=budget, history_size=30)
    events = [hub.publish("worklog:s", {"pad": "x" * n}) for n in sizes]
    snapshot = hub.snapshot("worklog:s")
    kept = events[-30:]
    assert snapshot == kept[len(kept) - len(snapshot) :]  # a suffix of the history
    if kept:
        assert snapshot, "the newest entry is always there"
        total = sum(len(e.encoded) for e in snapshot)
        assert total <= budget or len(snapshot) == 1
        if len(snapshot) < len(kept):
            assert total + len(kept[-len(snapshot) - 1].encoded) > budget
