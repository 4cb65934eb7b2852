"""Opening an :class:`InotifyWatcher` on a directory tree: the rules are read, the tree is scanned."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from engine._ports._fs import StrPath

from ._ignore_sources import IgnoreSources
from ._tree_rules import TreeRules
from ._watch_rules import IgnoreRules
from ._watcher import InotifyWatcher

if TYPE_CHECKING:
    from engine import WatcherFactory

__all__ = ["open_watcher"]


def _real_path(root: StrPath) -> Path:
    return Path(os.path.realpath(os.fspath(root)))


@asynccontextmanager
async def open_watcher(
    root: StrPath,
    *,
    ignore: Iterable[str] = (),
    ignore_defaults: bool = True,
    gitignore: bool = True,
    quiet: float = 0.005,
    cap: float = 0.05,
    reconcile_interval: float | None = 30.0,
) -> AsyncIterator[InotifyWatcher]:
    """Watch the directory tree at ``root``; iterate the watcher for :class:`engine.ChangeBatch`.

    Args:
        root: an existing directory.
        ignore: extra ``fnmatch`` globs to ignore (see :class:`IgnoreRules`).
        ignore_defaults: also ignore ``node_modules``, ``__pycache__``, the file system's
            temporary files and ``.git`` internals (except HEAD, ORIG_HEAD, packed-refs, the index
            and the refs under ``refs/heads`` and ``refs/remotes``).
        gitignore: in a git work tree, also ignore what git ignores (``.gitignore`` files, the
            exclude file, the global excludes file), except tracked files.
        quiet: a batch is returned after this many seconds without a new change ...
        cap: ... or this many seconds after its first change, whichever is sooner.
        reconcile_interval: seconds between reconcile scans that catch what the kernel did not
            report (``None``: never).

    Yields:
        The watcher. Changes made after the context is entered are reported.

    Raises:
        WatcherError: ``root`` is not a directory that can be watched.
        WatchLimitError: the tree needs more watches than ``max_user_watches`` allows.

    Cancellation: the git queries are ended and nothing is kept; the initial scan is synchronous;
    on exit the descriptor is closed.
    """
    if quiet < 0 or cap < 0:
        raise ValueError("quiet and cap must be >= 0")
    if reconcile_interval is not None and reconcile_interval <= 0:
        raise ValueError("reconcile_interval must be > 0 or None")
    real = _real_path(root)
    fixed = IgnoreRules.with_extra(ignore, defaults=ignore_defaults)
    sources = await IgnoreSources.discover(str(real)) if gitignore else None
    rules = TreeRules(fixed, None) if sources is None else await sources.rules(fixed)
    watcher = InotifyWatcher._create(
        real,
        rules=rules,
        sources=sources,
        quiet=quiet,
        cap=cap,
        reconcile_interval=reconcile_interval,
    )
    try:
        watcher._initial_scan()
        await trio.lowlevel.checkpoint()
        yield watcher
    finally:
        with trio.CancelScope(shield=True):
            await watcher.aclose()


if TYPE_CHECKING:
    _factory: WatcherFactory = open_watcher
