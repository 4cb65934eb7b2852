"""The memory bundle: what a rehydration returns, how it is rendered and how it round-trips.

A bundle holds its items (pinned first, then evidence by fused score), a report per source, the
candidates left out and why, and the SHA-256 digest of its text. Each item renders as one
``[source:id] text`` line; its token cost is ``ceil(chars / 4)`` (:func:`estimate_tokens`) of that
line including its newline, so the estimate of the whole bundle text never exceeds the budget.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._core._errors import ScribeError
from .._core._gather import SourceStatus
from .._ports._memory_records import Evidence

__all__ = [
    "Bundle",
    "BundleItem",
    "DropReason",
    "Dropped",
    "RehydrateError",
    "SourceReport",
    "estimate_tokens",
    "render_item",
]


class RehydrateError(ScribeError):
    """The rehydrator was configured wrongly (source names, limits), or a bundle's dict is not one."""


def estimate_tokens(text: str) -> int:
    """The token estimate used for budgets: ``ceil(len(text) / 4)``."""
    return -(-len(text) // 4)


def render_item(evidence: Evidence) -> str:
    """One bundle line: ``[source:id] text``."""
    return f"[{evidence.citation}] {evidence.text}"


class DropReason(enum.StrEnum):
    """Why a candidate is not in the bundle."""

    DUPLICATE = "duplicate"
    BUDGET = "budget"


@dataclass(frozen=True, slots=True)
class SourceReport:
    """What one source did: status, seconds taken (up to the deadline), items returned."""

    name: str
    status: SourceStatus
    elapsed: float
    count: int
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Dropped:
    """A candidate left out, and why (``duplicate_of`` is the citation of the kept copy)."""

    citation: str
    reason: DropReason
    tokens: int
    duplicate_of: str | None = None


@dataclass(frozen=True, slots=True)
class BundleItem:
    """An item of the bundle with its fused score and token cost."""

    evidence: Evidence
    score: float
    tokens: int

    @property
    def citation(self) -> str:
        """``source:id`` of the evidence."""
        return self.evidence.citation

    @property
    def pinned(self) -> bool:
        """Whether this item came in as pinned."""
        return self.evidence.pinned


@dataclass(frozen=True, slots=True)
class Bundle:
    """A packed, token-budgeted memory bundle.

    Attributes:
        query: What was asked.
        session_id: The session it was asked for (or ``None``).
        role: The role it was packed for (or ``None``).
        token_budget: The budget.
        tokens: Tokens charged for :attr:`items` (``<= token_budget``).
        items: Pinned items first, then evidence by fused score.
        sources: Per-source status and time.
        dropped: Candidates left out (duplicates, over budget).
        digest: SHA-256 of :attr:`text`.
        elapsed: Seconds the whole rehydration took.
        cached: Whether it came from the retrieval cache (then the reports are those of the
            rehydration that filled the cache).
    """

    query: str
    session_id: str | None
    role: str | None
    token_budget: int
    tokens: int
    items: tuple[BundleItem, ...]
    sources: tuple[SourceReport, ...]
    dropped: tuple[Dropped, ...]
    digest: str
    elapsed: float
    cached: bool = False

    @property
    def text(self) -> str:
        """The bundle as text: one ``[source:id] text`` line per item."""
        return "\n".join(render_item(item.evidence) for item in self.items)

    @property
    def pinned(self) -> tuple[BundleItem, ...]:
        """The pinned items."""
        return tuple(item for item in self.items if item.pinned)

    @property
    def evidence(self) -> tuple[BundleItem, ...]:
        """The ranked (not pinned) items."""
        return tuple(item for item in self.items if not item.pinned)

    def source(self, name: str) -> SourceReport:
        """The report of source ``name`` (``KeyError`` if it was not asked)."""
        for report in self.sources:
            if report.name == name:
                return report
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible view (for the CLI and feeds)."""
        return {
            "query": self.query,
            "session_id": self.session_id,
            "role": self.role,
            "token_budget": self.token_budget,
            "tokens": self.tokens,
            "digest": self.digest,
            "elapsed_ms": round(self.elapsed * 1000, 3),
            "cached": self.cached,
            "items": [
                {
                    "citation": item.citation,
                    "source": item.evidence.source,
                    "id": item.evidence.id,
                    "pinned": item.pinned,
                    "score": item.score,
                    "tokens": item.tokens,
                    "text": item.evidence.text,
                    "ranks": dict(item.evidence.ranks),
                    "scores": dict(item.evidence.scores),
                    "metadata": dict(item.evidence.metadata),
                }
                for item in self.items
            ],
            "sources": [
                {
                    "name": r.name,
                    "status": r.status.value,
                    "elapsed_ms": round(r.elapsed * 1000, 3),
                    "count": r.count,
                    "error": r.error,
                }
                for r in self.sources
            ],
            "dropped": [
                {
                    "citation": d.citation,
                    "reason": d.reason.value,
                    "tokens": d.tokens,
                    "duplicate_of": d.duplicate_of,
                }
                for d in self.dropped
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, cached: bool = False) -> Bundle:
        """Rebuild a bundle from :meth:`to_dict` output.

        Raises:
            RehydrateError: ``data`` is not a bundle's dict.
        """
        try:
            items = tuple(
                BundleItem(
                    Evidence(
                        source=i["source"],
                        id=i["id"],
                        text=i["text"],
                        ranks=dict(i.get("ranks", {})),
                        pinned=bool(i["pinned"]),
                        metadata=dict(i.get("metadata", {})),
                        scores={k: float(v) for k, v in i.get("scores", {}).items()},
                    ),
                    float(i["score"]),
                    int(i["tokens"]),
                )
                for i in data["items"]
            )
            return cls(
                query=data["query"],
                session_id=data["session_id"],
                role=data["role"],
                token_budget=int(data["token_budget"]),
                tokens=int(data["tokens"]),
                items=items,
                sources=tuple(
                    SourceReport(
                        r["name"],
                        SourceStatus(r["status"]),
                        float(r["elapsed_ms"]) / 1000,
                        int(r["count"]),
                        r["error"],
                    )
                    for r in data["sources"]
                ),
                dropped=tuple(
                    Dropped(
                        d["citation"], DropReason(d["reason"]), int(d["tokens"]), d["duplicate_of"]
                    )
                    for d in data["dropped"]
                ),
                digest=data["digest"],
                elapsed=float(data["elapsed_ms"]) / 1000,
                cached=cached,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RehydrateError(f"not a bundle: {exc!r}") from None
