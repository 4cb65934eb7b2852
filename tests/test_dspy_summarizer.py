"""The DSPy summarizer, offline with DSPy's DummyLM, over the real generation cache in PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
import trio.testing
from dspy.clients.engines.dummy_engine import AsyncDummyEngine, DummyEngine
from dspy.utils import DummyLM  # the dspy extra is part of the dev install
from memory_support import count_rows

import adapters
import engine
import engine.testing
from adapters.dspy import DSPySummarizer
from adapters.dspy._summary_prompt import ITEM_MAX
from engine import EntryKind, Summary, WorklogEntry
from engine._scribe._summary_pipeline import SummaryPipeline

SID = "dspy-summary"
ANSWER = {
    "key_ideas": ["The parser is the slow part"],
    "decisions": ["Parse the worklog lazily, because most reads need the head only"],
    "progress": ["Moved the parser into its own module"],
    "next_steps": ["Measure the lazy parser"],
}


class _ScriptedEngine(DummyEngine):  # type: ignore[misc]
    def __init__(self, owner: ScriptedLM) -> None:
        super().__init__(owner)
        self.lm = owner

    def _complete_messages(self, messages: Any) -> Any:
        lm = self.lm
        lm.calls += 1
        lm.entered.set()
        if lm.hold:
            lm.release.wait(60)
        if lm.fail is not None:
            raise lm.fail
        return super()._complete_messages(messages)


class ScriptedLM(DummyLM):  # type: ignore[misc]  # dspy ships no type information
    """DummyLM that counts its calls, and can fail or hold each call until released."""

    def __init__(
        self, answers: list[dict[str, Any]], *, fail: Exception | None = None, hold: bool = False
    ) -> None:
        super().__init__(answers)
        self.calls = 0
        self.fail = fail
        self.hold = hold
        self.entered = threading.Event()
        self.release = threading.Event()
        self._engine_spec = _ScriptedEngine(self)
        self._async_engine_spec = AsyncDummyEngine(self._engine_spec)


def _entries(*notes: str, start: int = 1) -> list[WorklogEntry]:
    out = [
        WorklogEntry(SID, start + i, EntryKind.NOTE, 1_700_000_000.0 + i, {"text": text})
        for i, text in enumerate(notes)
    ]
    files = {"modified": ["engine/_parser.py"], "created": [], "deleted": [], "moved": []}
    out.append(WorklogEntry(SID, start + len(notes), EntryKind.FILES, 1_700_000_100.0, files))
    return out


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[adapters.Database]:
    async with adapters.open_database(pg_url) as db:
        yield db


def _summarizer(db: adapters.Database, lm: Any, **kwargs: Any) -> tuple[DSPySummarizer, str]:
    model = f"dummy/{uuid.uuid4().hex[:8]}"  # a model of its own keeps tests apart in the cache
    cache = adapters.create_generation_cache(db)
    return DSPySummarizer(lm, cache, model=model, **kwargs), model


async def test_the_model_writes_the_lists_and_an_unchanged_worklog_is_a_cache_hit(
    db: adapters.Database,
) -> None:
    lm = ScriptedLM([ANSWER])
    summarizer, model = _summarizer(db, lm)
    entries = _entries("Decision: parse lazily", "Next: measure it")
    first = await summarizer.summarize(SID, None, entries)
    assert first.decisions == tuple(ANSWER["decisions"])
    assert first.next_steps == tuple(ANSWER["next_steps"])
    assert first.progress == tuple(ANSWER["progress"])
    assert first.key_ideas == tuple(ANSWER["key_ideas"])
    # the facts are the heuristic summarizer's
    assert first.files_modified == ("engine/_parser.py",)
    assert first.version == 1 and first.last_seq == 3 and first.metadata["notes"] == 2
    assert first.metadata["summarizer"] == "dspy"
    assert first.metadata["summarizer_model"] == model
    assert first.metadata["summarizer_cache"] == "generated"
    assert "summarizer_fallback" not in first.metadata
    # the same previous summary and the same entries: the cache answers, the model is not called
    again = await summarizer.summarize(SID, None, entries)
    assert again.metadata["summarizer_cache"] == "exact" and again.decisions == first.decisions
    # a summarizer made later (a restarted daemon) over the same cache: still no call
    later = DSPySummarizer(ScriptedLM([]), adapters.create_generation_cache(db), model=model)
    assert (await later.summarize(SID, None, entries)).decisions == first.decisions
    assert lm.calls == 1 and await count_rows(db, "memory_generation_cache", "model = %s", model) == 1
    stats = summarizer.statistics()
    assert (stats.summaries, stats.cache_hits, stats.calls, stats.fallbacks) == (2, 1, 1, {})
    # the next version folds new entries into the summary the model wrote: a new call
    lm.answers = iter([{**ANSWER, "progress": [*ANSWER["progress"], "Measured the parser"]}])
    second = await summarizer.summarize(SID, first, _entries("Done: measured", start=4))
    assert second.version == 2 and second.last_seq == 5 and lm.calls == 2
    assert second.progress[-1] == "Measured the parser"
    assert "Decision" not in str(lm.history) and lm.history == []  # no history kept


async def test_no_new_entries_asks_nothing(db: adapters.Database) -> None:
    lm = ScriptedLM([ANSWER])
    summarizer, _ = _summarizer(db, lm)
    first = await summarizer.summarize(SID, None, _entries("Decision: parse lazily"))
    final = await summarizer.summarize(SID, first, [], final=True)
    assert final.final and final.version == 2 and final.decisions == first.decisions
    assert final.metadata["summarizer_cache"] == "unchanged" and lm.calls == 1
    assert final.metadata["summarizer"] == "dspy"


async def test_the_answer_is_cut_and_scrubbed_before_it_is_kept(db: adapters.Database) -> None:
    secret = "AKIAIOSFODNN7EXAMPLE"
    answer = {
        **ANSWER,
        "key_ideas": [f"the key is {secret}", "x" * 5000, "<private>hidden</private> seen"],
        "progress": [f"step {i}" for i in range(100)],
    }
    lm = ScriptedLM([answer])
    summarizer, model = _summarizer(db, lm)
    entries = _entries(f"Note: the CI key is {secret}")
    summary = await summarizer.summarize(SID, None, entries)
    assert secret not in str(summary.as_dict()) and "hidden" not in str(summary.as_dict())
    assert len(summary.key_ideas[1]) == ITEM_MAX and len(summary.progress) == 30
    assert summary.progress[-1] == "step 99"
    # neither the prompt sent nor the answer kept holds the secret
    assert secret not in str(lm.history) and lm.calls == 1
    kept = DSPySummarizer(ScriptedLM([]), adapters.create_generation_cache(db), model=model)
    again = await kept.summarize(SID, None, entries)
    assert again.metadata["summarizer_cache"] == "exact" and again.key_ideas == summary.key_ideas
    assert "[redacted:aws-access-key-id]" in again.key_ideas[0]


async def test_a_spent_budget_falls_back_until_the_hour_has_room(
    db: adapters.Database, mock_clock: trio.testing.MockClock
) -> None:
    lm = ScriptedLM([ANSWER, ANSWER])
    summarizer, model = _summarizer(db, lm, calls_per_hour=1)
    first = await summarizer.summarize(SID, None, _entries("Decision: parse lazily"))
    assert first.metadata["summarizer"] == "dspy"
    mock_clock.jump(3599)
    second = await summarizer.summarize(SID, first, _entries("Decision: keep the cache", start=3))
    assert second.metadata["summarizer"] == "heuristic"
    assert second.metadata["summarizer_fallback"] == "budget"
    # the heuristic summary folds into the model's lists: nothing is lost
    assert second.decisions == (*ANSWER["decisions"], "keep the cache")
    assert second.version == 2 and second.last_seq == 4 and lm.calls == 1
    assert await count_rows(db, "memory_generation_cache", "model = %s", model) == 1
    mock_clock.jump(1)
    third = await summarizer.summarize(SID, second, _entries("Next: ship it", start=5))
    assert third.metadata["summarizer"] == "dspy" and "summarizer_fallback" not in third.metadata
    assert lm.calls == 2 and summarizer.statistics().fallbacks == {"budget": 1}
    assert summarizer.statistics().budget.refused == 1


@pytest.mark.parametrize(
    ("lm", "error"),
    [
        (ScriptedLM([], fail=RuntimeError("the model server is down")), "the model server is down"),
        (ScriptedLM([{"key_ideas": ["only one list"]}]), "Adapter"),  # an answer DSPy cannot read
    ],
)
async def test_a_failing_model_falls_back_and_keeps_nothing(
    db: adapters.Database, lm: ScriptedLM, error: str
) -> None:
    summarizer, model = _summarizer(db, lm)
    summary = await summarizer.summarize(SID, None, _entries("Decision: parse lazily"))
    assert summary.metadata["summarizer"] == "heuristic"
    assert summary.metadata["summarizer_fallback"] == "error"
    assert error in summary.metadata["summarizer_error"]
    assert summary.decisions == ("parse lazily",) and lm.calls == 1
    assert await count_rows(db, "memory_generation_cache", "model = %s", model) == 0


async def test_a_model_past_its_timeout_falls_back(
    db: adapters.Database, mock_clock: trio.testing.MockClock
) -> None:
    lm = ScriptedLM([ANSWER], hold=True)
    summarizer, model = _summarizer(db, lm, timeout=5.0)
    got: list[Summary] = []

    async def summarize() -> None:
        got.append(await summarizer.summarize(SID, None, _entries("Decision: parse lazily")))

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(summarize)
            await trio.to_thread.run_sync(lm.entered.wait)
            mock_clock.jump(5)
    finally:
        lm.release.set()
    assert got[0].metadata["summarizer_fallback"] == "timeout"
    assert got[0].decisions == ("parse lazily",)
    assert await count_rows(db, "memory_generation_cache", "model = %s", model) == 0


async def test_cancellation_abandons_the_call_and_stores_nothing(db: adapters.Database) -> None:
    lm = ScriptedLM([ANSWER, ANSWER], hold=True)  # the abandoned call takes one when released
    summarizer, model = _summarizer(db, lm)
    got: list[Summary] = []

    async def summarize() -> None:
        got.append(await summarizer.summarize(SID, None, _entries("Decision: parse lazily")))

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(summarize)
            await trio.to_thread.run_sync(lm.entered.wait)
            nursery.cancel_scope.cancel()
    finally:
        lm.release.set()
    assert got == [] and lm.calls == 1
    assert await count_rows(db, "memory_generation_cache", "model = %s", model) == 0
    stats = summarizer.statistics()
    assert (stats.summaries, stats.fallbacks) == (0, {})
    # the next request asks again and is answered
    lm.hold = False
    summary = await summarizer.summarize(SID, None, _entries("Decision: parse lazily"))
    assert summary.metadata["summarizer_cache"] == "generated" and lm.calls == 2


def test_bad_arguments_are_refused() -> None:
    cache = engine.GenerationCache(engine.testing.InMemoryGenerationStore())
    with pytest.raises(engine.InvalidArgumentError, match="calls_per_hour"):
        DSPySummarizer(DummyLM([]), cache, calls_per_hour=0)
    with pytest.raises(engine.InvalidArgumentError, match="timeout"):
        DSPySummarizer(DummyLM([]), cache, timeout=0)
    with pytest.raises(engine.InvalidArgumentError, match="model"):
        DSPySummarizer(object(), cache)


def test_adapters_and_the_app_load_dspy_only_when_it_is_chosen() -> None:
    code = "import sys, adapters, engine.app; print('dspy' in sys.modules, 'litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


async def test_the_pipeline_stores_the_models_summary_scrubbed(pg_url: str) -> None:
    privacy = engine.Privacy(extra_patterns=(engine.SecretPattern.of("ticket", r"TCK-\d+"),))
    answer = {**ANSWER, "next_steps": ["Close TCK-4711 once the parser is measured"]}
    lm = ScriptedLM([answer])
    sid = f"pipe-{uuid.uuid4().hex[:12]}"
    async with engine.open_engine() as eng, adapters.open_database(pg_url) as db:
        async with adapters.open_session_registry(db) as registry:
            store = adapters.PostgresWorklogStore(db)
            await registry.register(engine.SessionRecord(id=sid, name=sid, state="active"))
            await store.append(
                [WorklogEntry(sid, 1, EntryKind.NOTE, 1_700_000_000.0, {"text": "Decision: lazy"})]
            )
            summarizer = DSPySummarizer(
                lm, adapters.create_generation_cache(db), model=f"dummy/{sid}", privacy=privacy
            )
            pipeline = SummaryPipeline(eng, store, summarizer, min_interval=0, privacy=privacy)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pipeline.run)
                pipeline.request_nowait(sid)
                await pipeline.wait_idle()
                nursery.cancel_scope.cancel()
            stored = await store.latest_summary(sid)
    assert stored is not None and stored.metadata["summarizer"] == "dspy"
    assert stored.decisions == tuple(ANSWER["decisions"])
    assert "TCK-4711" not in str(stored.as_dict()) and "[redacted:ticket]" in stored.next_steps[0]
    assert lm.calls == 1 and pipeline.statistics().summaries == 1
