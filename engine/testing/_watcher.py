"""Watchers you feed: :class:`engine.Watcher` and :class:`engine.WatcherFactory` without inotify."""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, final

import trio

from .._core._construction import NoPublicConstructor
from .._core._errors import InvalidArgumentError
from .._ports._fs import ChangeBatch, StrPath, Watcher, WatcherFactory

__all__ = ["FakeWatcher", "FakeWatchers"]


@final
class FakeWatcher(metaclass=NoPublicConstructor):
    """A :class:`engine.Watcher` that returns the batches it is fed. Get one from a
    :class:`FakeWatchers` factory.

    Batches come out in the order they were fed, one per iteration (no debouncing: a test decides
    what one batch holds). As the inotify watcher does, it refuses a second concurrent iterator
    (``trio.BusyResourceError``), ends iteration once closed, and loses nothing when an iteration
    is cancelled.
    """

    def __init__(self, root: Path, ignore: tuple[str, ...], options: dict[str, object]) -> None:
        self._root = root
        self._ignore = ignore
        self._options = options
        self._queue: deque[ChangeBatch] = deque()
        self._lot = trio.lowlevel.ParkingLot()
        self._busy = False
        self._closed = False
        self._delivered = 0

    def __repr__(self) -> str:
        return f"<FakeWatcher {str(self._root)!r}: {len(self._queue)} batches queued>"

    @property
    def root(self) -> Path:
        """The watched directory."""
        return self._root

    @property
    def ignore(self) -> tuple[str, ...]:
        """The ignore globs it was opened with (recorded, not applied: feed what a test wants)."""
        return self._ignore

    @property
    def options(self) -> dict[str, object]:
        """The other keyword arguments it was opened with (``quiet``, ``cap``, ...)."""
        return dict(self._options)

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` ran."""
        return self._closed

    @property
    def delivered(self) -> int:
        """How many batches iteration returned so far."""
        return self._delivered

    def feed_nowait(self, batch: ChangeBatch) -> None:
        """Queue a batch for the iterator.

        Raises:
            InvalidArgumentError: the batch is empty (a watcher never returns an empty batch).
            trio.ClosedResourceError: the watcher is closed.
        """
        if not isinstance(batch, ChangeBatch) or not batch.changes:
            raise InvalidArgumentError("feed a ChangeBatch with at least one change")
        if self._closed:
            raise trio.ClosedResourceError("the watcher is closed")
        self._queue.append(batch)
        self._lot.unpark_all()

    def __aiter__(self) -> FakeWatcher:
        """The watcher itself."""
        return self

    async def __anext__(self) -> ChangeBatch:
        """The next batch fed.

        Raises:
            StopAsyncIteration: the watcher is closed.
            trio.BusyResourceError: another task is already waiting on this watcher.

        Cancellation: nothing is lost; queued batches stay for the next call.
        """
        if self._closed:
            raise StopAsyncIteration
        if self._busy:
            raise trio.BusyResourceError("another task is already iterating this watcher")
        self._busy = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            while not self._queue:
                await self._lot.park()
                if self._closed:
                    raise StopAsyncIteration
            batch = self._queue.popleft()
            self._delivered += 1
        finally:
            self._busy = False
        await trio.lowlevel.cancel_shielded_checkpoint()
        return batch

    async def aclose(self) -> None:
        """Stop: a waiting iterator ends, later ones too (idempotent). Cancellation: not blocking."""
        self._closed = True
        self._lot.unpark_all()
        await trio.lowlevel.checkpoint()


@final
class FakeWatchers:
    """A :class:`engine.WatcherFactory` that opens :class:`FakeWatcher` objects and feeds them.

    Hand it to the engine where the inotify factory would go, then :meth:`feed_nowait` the changes
    a test makes (or wait with :meth:`wait_watching` until the engine watches a root first).
    """

    def __init__(self) -> None:
        self._open: list[FakeWatcher] = []
        self._opened = 0
        self._changed = trio.lowlevel.ParkingLot()

    def __repr__(self) -> str:
        return f"<FakeWatchers: {len(self._open)} open>"

    @property
    def watchers(self) -> tuple[FakeWatcher, ...]:
        """The watchers open now, oldest first."""
        return tuple(self._open)

    @property
    def opened(self) -> int:
        """How many watchers were opened so far (a restarted watcher counts again)."""
        return self._opened

    def __call__(
        self,
        root: StrPath,
        *,
        ignore: Iterable[str] = (),
        **options: object,
    ) -> contextlib.AbstractAsyncContextManager[FakeWatcher]:
        """An async context manager yielding a new watcher of ``root`` (closed on exit)."""
        return self._open_watcher(Path(os.fspath(root)), tuple(ignore), options)

    @contextlib.asynccontextmanager
    async def _open_watcher(
        self, root: Path, ignore: tuple[str, ...], options: dict[str, object]
    ) -> AsyncIterator[FakeWatcher]:
        watcher = FakeWatcher._create(root, ignore, options)
        self._open.append(watcher)
        self._opened += 1
        self._changed.unpark_all()
        try:
            yield watcher
        finally:
            self._open.remove(watcher)
            self._changed.unpark_all()
            with trio.CancelScope(shield=True):
                await watcher.aclose()

    def _matching(self, root: StrPath | None) -> list[FakeWatcher]:
        wanted = None if root is None else Path(os.fspath(root))
        return [w for w in self._open if wanted is None or w.root == wanted]

    def feed_nowait(self, batch: ChangeBatch, *, root: StrPath | None = None) -> int:
        """Feed ``batch`` to every open watcher of ``root`` (None: of any root); return how many.

        Raises:
            InvalidArgumentError: the batch is empty.
        """
        targets = self._matching(root)
        for watcher in targets:
            watcher.feed_nowait(batch)
        return len(targets)

    async def wait_watching(self, root: StrPath | None = None, *, opened: int = 1) -> FakeWatcher:
        """Wait until ``opened`` watchers have been opened in all and one of ``root`` is open
        now; return the newest such.

        Cancellation: just ends the wait.
        """
        while True:
            found = self._matching(root)
            if found and self._opened >= opened:
                await trio.lowlevel.checkpoint()
                return found[-1]
            await self._changed.park()


if TYPE_CHECKING:

    def _conforms(watcher: FakeWatcher, factory: FakeWatchers) -> tuple[Watcher, WatcherFactory]:
        return watcher, factory
