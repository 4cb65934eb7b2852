"""Memory for DSPy programs: a DSPy module that asks the rehydrator.

DSPy programs run synchronously (``program(...)``) or on asyncio (``await program.acall(...)``),
while the rehydrator runs on trio. :class:`RehydrateRetriever` bridges both:

- ``forward`` (sync) runs the rehydration on the trio loop with ``trio.from_thread.run``: call
  the program from a thread trio started (``trio.to_thread.run_sync``) or from any thread when the
  retriever knows the loop's ``trio_token`` (captured automatically when it is built inside trio).
- ``aforward`` (async): under trio it just awaits; under asyncio it hands the call to the trio loop
  from a worker thread (``asyncio.to_thread``), so it works with the engine in a portal thread or
  in guest mode on the same loop.

The prediction has ``passages`` (``[source:id] text`` lines), ``context`` (the bundle text),
``citations`` and ``bundle`` (the :class:`engine.Bundle`, with per-source status).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import dspy
import sniffio
import trio

from engine import Bundle, InvalidArgumentError, Rehydrator, ScribeError

__all__ = ["DSPyBridgeError", "RehydrateRetriever"]


class DSPyBridgeError(ScribeError):
    """The retriever was called where it cannot reach the trio loop (say how in the message)."""


def _current_token() -> trio.lowlevel.TrioToken | None:
    try:
        return trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None


class RehydrateRetriever(dspy.Module):  # type: ignore[misc]  # dspy ships no type information
    """A DSPy module returning a memory bundle for a query.

    Args:
        rehydrator: The configured rehydrator (sources, limits).
        session: Engine session id to rehydrate for (overridable per call).
        role: Role to pack for (overridable per call).
        token_budget: Token budget of the bundle.
        timeout: Seconds the sources get.
        trio_token: The trio loop to run on (default: the loop this object is built in, if any).
    """

    def __init__(
        self,
        rehydrator: Rehydrator,
        *,
        session: str | None = None,
        role: str | None = None,
        token_budget: int = 1500,
        timeout: float = 0.5,
        trio_token: trio.lowlevel.TrioToken | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(rehydrator, Rehydrator):
            raise InvalidArgumentError("rehydrator must be an engine.Rehydrator")
        self._rehydrator = rehydrator
        self._session = session
        self._role = role
        self._budget = token_budget
        self._timeout = timeout
        self._token = trio_token if trio_token is not None else _current_token()

    def _job(
        self, query: str, session: str | None, role: str | None
    ) -> Callable[[], Awaitable[Bundle]]:
        return functools.partial(
            self._rehydrator.rehydrate,
            query,
            session=session if session is not None else self._session,
            role=role if role is not None else self._role,
            token_budget=self._budget,
            timeout=self._timeout,
        )

    @staticmethod
    def _prediction(bundle: Bundle) -> Any:
        return dspy.Prediction(
            passages=[f"[{item.citation}] {item.evidence.text}" for item in bundle.items],
            context=bundle.text,
            citations=[item.citation for item in bundle.items],
            bundle=bundle,
        )

    def _run_on_trio(self, job: Callable[[], Awaitable[Bundle]]) -> Bundle:
        try:
            if self._token is not None:
                return trio.from_thread.run(job, trio_token=self._token)
            return trio.from_thread.run(job)
        except RuntimeError as exc:
            raise DSPyBridgeError(
                "cannot reach the trio loop from here: call the program from a thread trio "
                "started (trio.to_thread.run_sync), give the retriever a trio_token, or use "
                f"acall under trio ({exc})"
            ) from None

    def forward(self, query: str, *, session: str | None = None, role: str | None = None) -> Any:
        """Rehydrate for ``query`` (blocking; see the module docstring for where it may run).

        Cancellation: if the trio side is cancelled the call raises ``trio.Cancelled``.
        """
        return self._prediction(self._run_on_trio(self._job(query, session, role)))

    async def aforward(
        self, query: str, *, session: str | None = None, role: str | None = None
    ) -> Any:
        """Rehydrate for ``query`` under trio or asyncio.

        Cancellation: under trio, as :func:`engine.rehydrate`; under asyncio, cancelling the
        awaiting task abandons the wait, and the rehydration ends at its own deadline.
        """
        job = self._job(query, session, role)
        if sniffio.current_async_library() == "trio":
            return self._prediction(await job())
        if self._token is None:
            raise DSPyBridgeError(
                "under asyncio the retriever needs the trio_token of the loop the engine runs on"
            )
        return self._prediction(await asyncio.to_thread(self._run_on_trio, job))
