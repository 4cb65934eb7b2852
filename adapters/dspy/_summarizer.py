"""The DSPy summarizer: a language model writes a session's summary lists, the heuristic one the facts.

Each summary version is one :class:`engine.GenerationCache` lookup of the exact prompt (the previous
summary and the new entries: :mod:`._summary_prompt`), so an unchanged worklog is a cache hit and
not a new call. A miss calls the model in a worker thread (DSPy is synchronous), at most
``threads`` at once, within ``timeout`` seconds and within the :class:`CallBudget` of calls per
hour. When the budget is spent, the model fails or answers something unreadable, or the call times
out, the heuristic summarizer makes that version and its metadata says why: a summary is never
lost and never waits past the timeout.

Metadata of each version: ``summarizer`` (``"dspy"``: the model wrote the lists; ``"heuristic"``:
the fallback did), ``summarizer_model``, ``summarizer_cache`` (the cache's outcome: ``exact``,
``generated``, ``shared``; ``unchanged`` when there was nothing new to ask about, the lists and
the other keys then staying as the previous version had them),
``summarizer_fallback`` (``budget``, ``timeout`` or ``error``, with ``summarizer_error``). Counters,
files and every other fact come from :class:`engine.HeuristicSummarizer`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, final

import dspy
import trio

from engine import (
    CacheOutcome,
    GenerationCache,
    HeuristicSummarizer,
    InvalidArgumentError,
    Privacy,
    Summary,
    WorklogEntry,
)

from ._call_budget import CallBudget, CallBudgetStatistics
from ._summary_prompt import (
    AnswerError,
    SummarizeWorklog,
    answer_json,
    cache_prompt,
    read_answer,
    render_entries,
    render_previous,
)

__all__ = ["DSPySummarizer", "DSPySummarizerStatistics"]

#: Part of every cache key: a change to the program or its prompt must not reuse older answers.
PROGRAM: Final = "scribe-summary/1"
#: The longest ``summarizer_error`` kept in a summary's metadata.
_ERROR_MAX: Final = 300
#: The most seconds a call may take.
TIMEOUT_MAX: Final = 600.0
_FALLBACK_KEYS: Final = ("summarizer_fallback", "summarizer_error", "summarizer_cache")


class _Fallback(Exception):
    """This version is made by the heuristic summarizer (``reason``: budget, timeout, error)."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DSPySummarizerStatistics:
    """Counters of a :class:`DSPySummarizer`.

    Attributes:
        summaries: versions made by the model (from the cache or a call).
        cache_hits: versions whose answer the cache already held.
        calls: calls made to the model.
        fallbacks: versions the heuristic summarizer made, by reason (budget, timeout, error).
        budget: the call budget's counters.
    """

    summaries: int
    cache_hits: int
    calls: int
    fallbacks: dict[str, int]
    budget: CallBudgetStatistics


@final
class DSPySummarizer:
    """A :class:`engine.Summarizer` whose lists a DSPy language model writes.

    Args:
        lm: the DSPy language model (``dspy.LM("openai/gpt-4o-mini")``, a ``DummyLM`` in tests).
        cache: the generation cache every answer goes through (``stack.generation_cache``).
        model: the name answers are cached under (default: ``lm.model``).
        calls_per_hour: the most calls to the model in any hour; past it, the heuristic
            summarizer makes the summary.
        timeout: the most seconds one call may take before the heuristic summary is used.
        threads: the most calls running at once (an abandoned call holds its thread until the
            model returns).
        privacy: what scrubs the text sent to the model and the text it answers (default:
            ``<private>`` text removed, secrets redacted); the pipeline scrubs the summary again.

    Raises:
        InvalidArgumentError: a bad budget, timeout or thread count, or no model name.
    """

    def __init__(
        self,
        lm: Any,
        cache: GenerationCache,
        *,
        model: str | None = None,
        calls_per_hour: int = 60,
        timeout: float = 30.0,
        threads: int = 2,
        privacy: Privacy | None = None,
    ) -> None:
        name = getattr(lm, "model", None) if model is None else model
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError("the summarizer needs a model name (model=...)")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= TIMEOUT_MAX
        ):
            raise InvalidArgumentError(f"timeout must be in (0, {TIMEOUT_MAX}], not {timeout!r}")
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 16:
            raise InvalidArgumentError(f"threads must be an int from 1 to 16, not {threads!r}")
        self._lm = lm
        self._cache = cache
        self._model = name
        self._budget = CallBudget(calls_per_hour)
        self._timeout = float(timeout)
        self._limiter = trio.CapacityLimiter(threads)
        self._privacy = Privacy() if privacy is None else privacy
        self._heuristic = HeuristicSummarizer()
        self._program = dspy.Predict(SummarizeWorklog)
        # One call per summary: no second try with another adapter behind the budget's back.
        self._adapter = dspy.ChatAdapter(use_json_adapter_fallback=False)
        self._summaries = self._hits = self._calls = 0
        self._fallbacks: dict[str, int] = {}

    @property
    def lm(self) -> Any:
        """The DSPy language model."""
        return self._lm

    @property
    def model(self) -> str:
        """The name answers are cached under."""
        return self._model

    def statistics(self) -> DSPySummarizerStatistics:
        """A snapshot of the counters."""
        return DSPySummarizerStatistics(
            summaries=self._summaries,
            cache_hits=self._hits,
            calls=self._calls,
            fallbacks=dict(self._fallbacks),
            budget=self._budget.statistics(),
        )

    async def summarize(
        self,
        session_id: str,
        previous: Summary | None,
        entries: Sequence[WorklogEntry],
        *,
        final: bool = False,
    ) -> Summary:
        """The next summary version: the model's lists (cached) on the heuristic summary's facts.

        Raises:
            InvalidArgumentError: an entry of another session.

        Cancellation: the model's call, if one is running, is abandoned (its thread ends when the
        model returns, and its answer is dropped); nothing is stored in the cache and no summary
        is made.
        """
        facts = self._heuristic.fold(session_id, previous, entries, final=final)
        after = previous.last_seq if previous is not None else 0
        new = [e for e in entries if e.seq > after]
        if not new:  # nothing to ask about: the lists stay, and so does what wrote them
            meta = {"summarizer": "heuristic", **facts.metadata, "summarizer_cache": "unchanged"}
            return replace(facts, metadata=meta)
        scrub = self._privacy.scrub
        before, worklog = scrub(render_previous(previous)), scrub(render_entries(new))
        asked = {"previous_summary": before, "worklog": worklog, "session_ended": final}
        prompt = cache_prompt(before, worklog, final)
        try:
            got = await self._cache.get_or_generate(
                prompt,
                self._model,
                {"program": PROGRAM},
                functools.partial(self._generate, asked),
                similar=False,
            )
            lists = read_answer(got.text)
        except _Fallback as exc:
            return self._fallback(facts, exc.reason, exc.detail)
        except Exception as exc:  # the cache's store, a shared leader's failure, a bad kept answer
            cause = exc.__cause__
            if isinstance(cause, _Fallback):  # another caller's call for the same prompt
                return self._fallback(facts, cause.reason, cause.detail)
            return self._fallback(facts, "error", f"{type(exc).__name__}: {exc}")
        self._summaries += 1
        if got.outcome is not CacheOutcome.GENERATED:
            self._hits += 1
        written = replace(
            facts,
            key_ideas=lists["key_ideas"],
            decisions=lists["decisions"],
            progress=lists["progress"],
            next_steps=lists["next_steps"],
        )
        return self._tagged(written, "dspy", cache=got.outcome.value)

    async def _generate(self, asked: dict[str, Any]) -> str:
        if not self._budget.try_spend(trio.current_time()):
            raise _Fallback("budget", f"{self._budget.statistics().calls_per_hour} calls an hour")
        self._calls += 1
        call = functools.partial(self._call, asked)
        with trio.move_on_after(self._timeout) as scope:
            try:
                prediction = await trio.to_thread.run_sync(
                    call, limiter=self._limiter, abandon_on_cancel=True
                )
            except Exception as exc:
                raise _Fallback("error", f"{type(exc).__name__}: {exc}") from exc
        if scope.cancelled_caught:
            raise _Fallback("timeout", f"no answer within {self._timeout:g} s")
        try:
            return answer_json(prediction, self._privacy)
        except AnswerError as exc:
            raise _Fallback("error", str(exc)) from None

    def _call(self, asked: dict[str, Any]) -> Any:
        # In the worker thread: DSPy's settings are per thread here, and no history is kept
        # (a daemon would otherwise hold thousands of prompts).
        with dspy.context(lm=self._lm, adapter=self._adapter, disable_history=True):
            return self._program(**asked)

    def _fallback(self, facts: Summary, reason: str, detail: str | None) -> Summary:
        self._fallbacks[reason] = self._fallbacks.get(reason, 0) + 1
        summary = self._tagged(facts, "heuristic", fallback=reason)
        if detail:
            text = " ".join(self._privacy.scrub(detail).split())
            meta = dict(summary.metadata)
            meta["summarizer_error"] = text[:_ERROR_MAX]
            summary = replace(summary, metadata=meta)
        return summary

    def _tagged(
        self, summary: Summary, by: str, *, cache: str | None = None, fallback: str | None = None
    ) -> Summary:
        meta = {k: v for k, v in summary.metadata.items() if k not in _FALLBACK_KEYS}
        meta["summarizer"] = by
        meta["summarizer_model"] = self._model
        if cache is not None:
            meta["summarizer_cache"] = cache
        if fallback is not None:
            meta["summarizer_fallback"] = fallback
        return replace(summary, metadata=meta)
