"""Generation cache: LLM outputs keyed by prompt + model + settings, with single-flight.

Lookup order: the exact key first, then (optionally) the most similar live prompt of the *same*
model and settings above a threshold, and only when the two prompts agree on negation words and
on numbers (:func:`similarity_guard`) — a trigram match happily pairs "do not delete the table"
with "delete the table", or "retry 3 times" with "retry 5 times". Misses go through
:class:`~engine._core._singleflight.SingleFlight`, so concurrent misses for one key (from any session
sharing this cache object) run the generator once.

Storage is behind :class:`~engine._ports._generation_store.GenerationCacheStore` (PostgreSQL in
``adapters``); the records are in :mod:`engine._ports._memory_records`, the guard in
:mod:`engine._memory._similarity_guard`.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, final

from .._core._errors import InvalidArgumentError, ScribeError
from .._core._singleflight import SingleFlight
from .._ports._generation_store import GenerationCacheStore
from .._ports._memory_records import NewGeneration
from .._ports._validation import canonical_json, check_invalidate_filters, check_text, check_ttl
from ._similarity_guard import similarity_guard

__all__ = [
    "CacheOutcome",
    "Generation",
    "GenerationCache",
    "GenerationCacheError",
    "GenerationCacheStatistics",
    "generation_key",
    "settings_hash",
]


class GenerationCacheError(ScribeError):
    """The generation cache could not do what was asked (bad generator output, bad settings)."""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def settings_hash(model: str, settings: Mapping[str, Any]) -> str:
    """Hash of model + generation settings (the scope of similarity matching)."""
    return _sha256(canonical_json({"model": model, "settings": dict(settings)}))


def generation_key(prompt: str, model: str, settings: Mapping[str, Any]) -> str:
    """The cache key: SHA-256 of the canonical JSON of prompt, model and settings."""
    return _sha256(canonical_json({"model": model, "prompt": prompt, "settings": dict(settings)}))


# ---------------------------------------------------------------------------------- the cache


class CacheOutcome(enum.StrEnum):
    """How a :meth:`GenerationCache.get_or_generate` call was answered."""

    EXACT = "exact"
    SIMILAR = "similar"
    GENERATED = "generated"  # this caller led and ran the generator
    SHARED = "shared"  # this caller waited for another caller's generator


@dataclass(frozen=True, slots=True)
class Generation:
    """The answer of :meth:`GenerationCache.get_or_generate`."""

    text: str
    outcome: CacheOutcome
    key: str
    similarity: float
    matched_key: str


@dataclass(frozen=True, slots=True)
class GenerationCacheStatistics:
    """Counters of one :class:`GenerationCache` (this process)."""

    exact_hits: int
    similar_hits: int
    misses: int
    generated: int
    shared: int
    guard_rejections: int

    @property
    def lookups(self) -> int:
        """Every lookup counted (hits and misses)."""
        return self.exact_hits + self.similar_hits + self.misses

    @property
    def hit_ratio(self) -> float:
        """Hits over lookups (0.0 before any lookup)."""
        return (self.exact_hits + self.similar_hits) / self.lookups if self.lookups else 0.0


@final
class GenerationCache:
    """Exact + guarded-similarity cache of generations with single-flight misses.

    Args:
        store: Where entries live.
        similarity_threshold: Minimum trigram similarity (0-1] of a similar match; ``None``
            turns similarity matching off.
        ttl: Default time to live of new entries in seconds (``None``: no expiry).
    """

    def __init__(
        self,
        store: GenerationCacheStore,
        *,
        similarity_threshold: float | None = 0.8,
        ttl: float | None = None,
    ) -> None:
        if similarity_threshold is not None and not 0.0 < similarity_threshold <= 1.0:
            raise InvalidArgumentError("similarity_threshold must be in (0, 1]")
        self._store = store
        self._threshold = similarity_threshold
        self._ttl = check_ttl(ttl)
        self._flight: SingleFlight[str, Generation] = SingleFlight()
        self._exact = self._similar = self._misses = 0
        self._generated = self._shared = self._rejected = 0

    def statistics(self) -> GenerationCacheStatistics:
        """A snapshot of the hit/miss counters."""
        return GenerationCacheStatistics(
            exact_hits=self._exact,
            similar_hits=self._similar,
            misses=self._misses,
            generated=self._generated,
            shared=self._shared,
            guard_rejections=self._rejected,
        )

    @property
    def single_flight(self) -> SingleFlight[str, Generation]:
        """The single-flight group used for misses (for its statistics)."""
        return self._flight

    @staticmethod
    def _check(prompt: str, model: str, settings: Mapping[str, Any]) -> None:
        check_text("prompt", prompt)
        check_text("model", model)
        if not isinstance(settings, Mapping):
            raise InvalidArgumentError("settings must be a mapping")

    async def lookup(
        self, prompt: str, model: str, settings: Mapping[str, Any], *, similar: bool = True
    ) -> Generation | None:
        """Find a cached answer: exact key first, then (unless ``similar`` is False) a guarded
        similar prompt.

        Counts an exact or similar hit, or a miss.

        Cancellation: nothing is counted or changed when cancelled.
        """
        self._check(prompt, model, settings)
        key = generation_key(prompt, model, settings)
        found = await self._find(prompt, model, settings, key, similar=similar)
        if found is None:
            self._misses += 1
        elif found.outcome is CacheOutcome.EXACT:
            self._exact += 1
        else:
            self._similar += 1
        return found

    async def _find(
        self, prompt: str, model: str, settings: Mapping[str, Any], key: str, *, similar: bool
    ) -> Generation | None:
        exact = await self._store.get_exact(key)
        if exact is not None:
            return Generation(exact.response, CacheOutcome.EXACT, key, 1.0, exact.key)
        if self._threshold is None or not similar:
            return None
        candidates = await self._store.find_similar(
            prompt,
            model=model,
            settings_hash=settings_hash(model, settings),
            threshold=self._threshold,
            limit=5,
        )
        for candidate in candidates:
            # The store filters by model and settings; check again, cheaply, to be certain.
            if candidate.model != model or candidate.similarity < self._threshold:
                continue
            if similarity_guard(prompt, candidate.prompt) is not None:
                self._rejected += 1
                continue
            await self._store.record_hit(candidate.key)
            return Generation(
                candidate.response, CacheOutcome.SIMILAR, key, candidate.similarity, candidate.key
            )
        return None

    async def get_or_generate(
        self,
        prompt: str,
        model: str,
        settings: Mapping[str, Any],
        generator: Callable[[], Awaitable[str]],
        *,
        ttl: float | None = None,
        similar: bool = True,
    ) -> Generation:
        """Return the cached answer, or run ``generator`` once for all concurrent misses.

        Args:
            prompt: The prompt.
            model: The model name.
            settings: Generation settings (JSON-serialisable; part of the key).
            generator: Called with no arguments on a miss; returns the text.
            ttl: Time to live of the stored answer (default: the cache's).
            similar: Whether a similar prompt may answer (False: the exact key only, for
                answers that hold only for their own prompt, such as summaries).

        Raises:
            GenerationCacheError: The generator returned something that is not a string.
            SingleFlightError: The generator of another caller of the same key raised.
            Exception: What the generator raised, in the caller that ran it.

        Cancellation: a waiting caller just leaves. A cancelled leader stores nothing and one of
        the waiters runs the generator instead.
        """
        found = await self.lookup(prompt, model, settings, similar=similar)
        if found is not None:
            return found
        key = generation_key(prompt, model, settings)
        ttl = check_ttl(ttl)
        led = False

        async def lead() -> Generation:
            nonlocal led
            led = True
            again = await self._store.get_exact(key)
            if again is not None:  # filled meanwhile (by another process or an earlier leader)
                return Generation(again.response, CacheOutcome.SHARED, key, 1.0, again.key)
            text = await generator()
            if not isinstance(text, str):
                raise GenerationCacheError(
                    f"generator returned {type(text).__name__}, expected str"
                )
            await self._store.put(
                NewGeneration(
                    key=key,
                    prompt=prompt,
                    model=model,
                    settings=dict(settings),
                    settings_hash=settings_hash(model, settings),
                    response=text,
                    ttl=ttl if ttl is not None else self._ttl,
                )
            )
            self._generated += 1
            return Generation(text, CacheOutcome.GENERATED, key, 1.0, key)

        result = await self._flight.run(key, lead)
        if not led or result.outcome is not CacheOutcome.GENERATED:
            self._shared += 1
            return Generation(result.text, CacheOutcome.SHARED, key, 1.0, result.matched_key)
        return result

    async def store(
        self,
        prompt: str,
        model: str,
        settings: Mapping[str, Any],
        response: str,
        *,
        ttl: float | None = None,
    ) -> str:
        """Store ``response`` as the answer to ``prompt`` + ``model`` + ``settings`` (replacing
        any) and return its key, for callers that generate themselves.

        Args:
            prompt: The prompt.
            model: The model name.
            settings: Generation settings (JSON-serialisable; part of the key).
            response: The generated text.
            ttl: Time to live of the entry (default: the cache's).

        Raises:
            InvalidArgumentError: An empty prompt or model, settings that are not a JSON
                mapping, a response that is not a string, a bad ttl, or a field past its limit.

        Cancellation: the write is one statement; cancelled, nothing is stored.
        """
        self._check(prompt, model, settings)
        ttl = check_ttl(ttl)
        key = generation_key(prompt, model, settings)
        await self._store.put(
            NewGeneration(
                key=key,
                prompt=prompt,
                model=model,
                settings=dict(settings),
                settings_hash=settings_hash(model, settings),
                response=response,
                ttl=ttl if ttl is not None else self._ttl,
            )
        )
        return key

    async def invalidate(
        self,
        *,
        key: str | None = None,
        model: str | None = None,
        older_than: float | None = None,
    ) -> int:
        """Delete entries by key, by model and/or by age in seconds; return how many.

        Raises:
            InvalidArgumentError: No filter given, or a negative age.

        Cancellation: the delete is one statement; cancelled, it deletes nothing.
        """
        key, model, older_than = check_invalidate_filters(key, model, older_than)
        return await self._store.invalidate(key=key, model=model, older_than=older_than)
