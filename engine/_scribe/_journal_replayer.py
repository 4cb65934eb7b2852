"""The scribe's journal replayer: journals no live capture owns (left by a crash, or by a session that
stopped while the store was down) written into the store, at start and again until they are all in."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, final

import trio

from .._ports._entry_journal import EntryJournal
from .._ports._worklog_store import WorklogStore
from ._entry_reconcile import ReplayReport, replay_journals

__all__ = ["JournalReplayer"]

_RETRY_INITIAL: Final = 0.5
_RETRY_MAX: Final = 30.0


@final
class JournalReplayer:
    """Replays journals into the store. Made by the scribe.

    Args:
        journal: the journals.
        store: the worklog store.
        live: the sessions captured now (their writers own their journals).
        publish: ``publish(topic, payload)`` for what was replayed or failed.
    """

    def __init__(
        self,
        journal: EntryJournal,
        store: WorklogStore,
        live: Callable[[], Iterable[str]],
        publish: Callable[[str, dict[str, Any]], object],
    ) -> None:
        self._journal = journal
        self._store = store
        self._live = live
        self._publish = publish
        self._wanted = trio.Event()
        # One replay at a time: two reading the store before either wrote would both write a
        # journal's entries (the second after the first's, as if someone else had taken those seqs).
        self._replaying = trio.Lock()
        self.last: ReplayReport | None = None
        self.replayed = 0

    def request_nowait(self) -> None:
        """Ask for a replay soon (by :meth:`run`)."""
        self._wanted.set()

    async def replay(self) -> ReplayReport:
        """Replay every journal no live capture owns, now (after a replay under way, as :meth:`run`'s
        retry may be, has ended); a journal that could not be written in full stays, and
        :meth:`run` retries it.

        Cancellation: while waiting for a replay under way, nothing is done; then between store
        writes (none is written twice by a later replay).
        """
        async with self._replaying:
            report = await replay_journals(
                self._journal, self._store, skip=frozenset(self._live())
            )
        self.last = report
        written = sum(report.written.values())
        self.replayed += written
        if written or report.failed:
            self._publish(
                "scribe.replay",
                {"written": dict(report.written), "failed": dict(report.failed)},
            )
        if report.failed:
            self._wanted.set()
        return report

    async def start(self, nursery: trio.Nursery) -> None:
        """Replay now, then keep :meth:`run` going in ``nursery``."""
        await self.replay()
        nursery.start_soon(self.run, name="scribe journal replayer")

    async def run(self) -> None:
        """Replay whenever asked, retrying what failed with bounded backoff (0.5 s doubling to 30 s),
        until cancelled."""
        delay = _RETRY_INITIAL
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            report = await self.replay()
            if report.failed:
                await trio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
            else:
                delay = _RETRY_INITIAL
