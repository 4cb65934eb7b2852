"""DSPy programs getting their context from the rehydrator, offline with DSPy's DummyLM."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import dspy  # the dspy extra is part of the dev install
import pytest
import trio
from dspy.utils import DummyLM
from memory_support import new_session_id, open_store

import adapters
import engine
from adapters.dspy import DSPyBridgeError, RehydrateRetriever
from engine import NewDecision, NewMessage


class ContextQA(dspy.Module):  # type: ignore[misc]
    """A small program: rehydrate memory, then answer with it as context."""

    def __init__(self, retriever: Any) -> None:
        super().__init__()
        self.retrieve = retriever
        self.answer = dspy.Predict("context, question -> answer")

    def forward(self, question: str) -> Any:
        context = self.retrieve(question).context
        return self.answer(context=context, question=question)

    async def aforward(self, question: str) -> Any:
        context = (await self.retrieve.acall(question)).context
        return await self.answer.acall(context=context, question=question)


@pytest.fixture
async def memory(pg_url: str) -> AsyncIterator[tuple[str, engine.Rehydrator]]:
    sid = new_session_id()
    async with open_store(pg_url) as (db, store):
        await store.add_messages(
            sid,
            [
                NewMessage("user", "Which fusion does the rehydrator use?"),
                NewMessage("assistant", "Reciprocal rank fusion with k = 60."),
            ],
        )
        await store.add_decision(NewDecision("Fuse with reciprocal rank fusion", session_id=sid))
        yield sid, engine.Rehydrator(adapters.default_memory_sources(db, store), timeout=10.0)


async def test_sync_program_from_a_trio_worker_thread(
    memory: tuple[str, engine.Rehydrator],
) -> None:
    sid, rehydrator = memory
    program = ContextQA(RehydrateRetriever(rehydrator, session=sid))
    lm = DummyLM([{"answer": "reciprocal rank fusion"}])

    def run() -> Any:
        with dspy.context(lm=lm):
            return program(question="what fusion does the rehydrator use")

    prediction = await trio.to_thread.run_sync(run)
    assert prediction.answer == "reciprocal rank fusion"
    prompt = str(lm.history[-1]["messages"])
    assert "Reciprocal rank fusion with k = 60." in prompt  # the bundle reached the LM
    assert "[decisions:" in prompt and "[messages:" in prompt  # with its citations


async def test_async_program_on_asyncio_reaches_the_trio_loop(
    memory: tuple[str, engine.Rehydrator],
) -> None:
    sid, rehydrator = memory
    retriever = RehydrateRetriever(rehydrator, session=sid, role="researcher")
    program = ContextQA(retriever)
    lm = DummyLM([{"answer": "rrf"}])

    async def on_asyncio() -> Any:
        with dspy.context(lm=lm):
            return await program.acall(question="rehydrator fusion")

    prediction = await trio.to_thread.run_sync(asyncio.run, on_asyncio())
    assert prediction.answer == "rrf"
    assert "Reciprocal rank fusion with k = 60." in str(lm.history[-1]["messages"])
    # under trio, acall just awaits the rehydrator
    direct = await retriever.acall("rehydrator fusion")
    assert isinstance(direct.bundle, engine.Bundle)
    assert direct.citations == [item.citation for item in direct.bundle.items]
    assert {r.status for r in direct.bundle.sources} == {engine.SourceStatus.OK}


async def test_blocking_call_on_the_trio_thread_is_a_typed_error(
    memory: tuple[str, engine.Rehydrator],
) -> None:
    sid, rehydrator = memory
    retriever = RehydrateRetriever(rehydrator, session=sid)
    with pytest.raises(DSPyBridgeError, match="to_thread"):
        retriever("anything")
    with pytest.raises(engine.InvalidArgumentError):
        RehydrateRetriever(object())  # type: ignore[arg-type]
