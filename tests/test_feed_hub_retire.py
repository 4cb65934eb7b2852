"""The hub keeps memory bounded by retiring the history of idle per-session topics."""

from __future__ import annotations

from engine import FeedHub, FeedPosition


def test_idle_topics_give_up_their_history_but_never_their_offsets() -> None:
    hub = FeedHub(max_topics=3, epoch="e")
    for name in ("a", "b", "c"):
        hub.publish(f"worklog:{name}", {"n": 1})
        hub.publish(f"worklog:{name}", {"n": 2})
    hub.publish("worklog:a", {"n": 3})  # "a" is now the most recently published
    hub.publish("worklog:d", {"n": 1})  # one topic too many: "b", the least recent, is retired
    stats = hub.statistics()
    assert stats.topics == 3 and stats.retired_topics == 1
    assert hub.snapshot("worklog:b") == []
    assert hub.position("worklog:b") == FeedPosition("e", 2)
    assert [e.offset for e in hub.snapshot("worklog:a")] == [1, 2, 3]

    # a client that saw everything resumes with nothing missed; one that did not gets a snapshot
    caught_up = hub.add_client(sessions=None, on_ready=lambda: None)
    assert hub.subscribe(caught_up, "worklog:b", since=FeedPosition("e", 2)) is True
    behind = hub.add_client(sessions=None, on_ready=lambda: None)
    assert hub.subscribe(behind, "worklog:b", since=FeedPosition("e", 1)) is False
    # offsets carry on from where the retired topic stopped
    assert hub.publish("worklog:b", {"n": 3}).offset == 3


def test_subscribed_and_engine_wide_topics_are_never_retired() -> None:
    hub = FeedHub(max_topics=2, epoch="e")
    hub.publish("sessions", {"id": "x"}, key="x")
    watcher = hub.add_client(sessions=None, on_ready=lambda: None)
    hub.subscribe(watcher, "worklog:kept")
    hub.publish("worklog:kept", {"n": 1})
    for i in range(5):
        hub.publish(f"worklog:idle{i}", {"n": 1})
    assert hub.snapshot("sessions") != []
    assert [e.offset for e in hub.snapshot("worklog:kept")] == [1]
    assert hub.statistics().retired_topics == 4  # all idle ones but the newest
