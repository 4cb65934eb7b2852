"""The git context sources: branch, status, log and diff, and the cheap refresh of status and diff.

After a change of a few known work-tree paths, status and diff are brought up to date by git reads
limited to those paths (:class:`PathReads`), instead of reading the whole tree again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar, final

import trio

from .._core._singleflight import SingleFlight, SingleFlightError
from .._ports._fs import FileSystemError
from .._ports._git import Git
from .._ports._git_errors import GitCommandError
from .._ports._git_history import DiffStat
from .._ports._git_status import OrdinaryEntry, RenamedEntry, Status, UnmergedEntry, UntrackedEntry
from ._spec import FULL, ContextError

if TYPE_CHECKING:
    from ._sources import ContextTarget

__all__ = [
    "PathReads",
    "branch_source",
    "diff_refresh",
    "diff_source",
    "log_source",
    "status_refresh",
    "status_source",
]

_MAX_ENTRIES: Final = 500
_LOG_COUNT: Final = 30

_T = TypeVar("_T")


@final
class PathReads:
    """Path-limited reads of one work tree for the incremental refresh of status and diff.

    Identical reads running at the same time share one git process: the status and the diff
    refresh both read the diff stat of the changed paths. A failed shared read leaves each caller
    that joined it to run its own.
    """

    __slots__ = ("_flights", "_git")

    def __init__(self, git: Git) -> None:
        self._git = git
        self._flights: SingleFlight[tuple[str, ...], Any] = SingleFlight()

    async def _shared(self, key: tuple[str, ...], fn: Callable[[], Awaitable[_T]]) -> _T:
        try:
            value: _T = await self._flights.run(key, fn)
        except SingleFlightError:
            value = await fn()
        return value

    async def status(self, paths: Sequence[str]) -> Status:
        """``git status`` of ``paths`` only (the branch headers are the whole repository's)."""
        ps = tuple(paths)
        return await self._shared(("status", *ps), lambda: self._git.status(paths=ps))

    async def diff_stat(self, paths: Sequence[str]) -> DiffStat:
        """Line counts of ``paths`` in the work tree against HEAD."""
        ps = tuple(paths)
        return await self._shared(("diff", *ps), lambda: self._git.diff_stat("HEAD", paths=ps))


def _need_git(t: ContextTarget) -> Git:
    if t.git is None:
        raise ContextError("the session has no work tree")
    return t.git


async def branch_source(t: ContextTarget) -> dict[str, Any]:
    git = _need_git(t)
    out: dict[str, Any] = {}

    async def branch() -> None:
        out["branch"] = await git.current_branch()

    async def head() -> None:
        out["head"] = await git.head()

    async with trio.open_nursery() as n:
        n.start_soon(branch)
        n.start_soon(head)
    return {"branch": out["branch"], "head": out["head"], "detached": out["branch"] is None}


def _status_value(st: Status) -> dict[str, Any]:
    b = st.branch
    changed: list[dict[str, Any]] = []
    untracked: list[str] = []
    conflicts: list[str] = []
    for e in st.entries:
        if isinstance(e, UnmergedEntry):
            conflicts.append(e.path)
        elif isinstance(e, RenamedEntry):
            changed.append(
                {"path": e.path, "from": e.orig_path, "index": e.index, "worktree": e.worktree}
            )
        elif isinstance(e, OrdinaryEntry):
            changed.append({"path": e.path, "index": e.index, "worktree": e.worktree})
        elif isinstance(e, UntrackedEntry):
            untracked.append(e.path)
    return _status_dict(b.head, b.oid, b.upstream, b.ahead, b.behind, changed, untracked, conflicts)


def _status_dict(
    branch: str | None,
    head: str | None,
    upstream: str | None,
    ahead: int | None,
    behind: int | None,
    changed: list[dict[str, Any]],
    untracked: list[str],
    conflicts: list[str],
) -> dict[str, Any]:
    changed = sorted(changed, key=lambda e: str(e["path"]))
    untracked = sorted(untracked)
    conflicts = sorted(conflicts)
    total = len(changed) + len(untracked) + len(conflicts)
    kept = sum(min(len(x), _MAX_ENTRIES) for x in (changed, untracked, conflicts))
    return {
        "branch": branch,
        "head": head,
        "upstream": upstream,
        "ahead": ahead,
        "behind": behind,
        "clean": total == 0,
        "changed": changed[:_MAX_ENTRIES],
        "untracked": untracked[:_MAX_ENTRIES],
        "conflicts": conflicts[:_MAX_ENTRIES],
        "truncated": total - kept,
    }


def _under(path: str, paths: Iterable[str]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in paths)


async def status_source(t: ContextTarget) -> dict[str, Any]:
    return _status_value(await _need_git(t).status())


async def status_refresh(t: ContextTarget, prev: Any, paths: frozenset[str]) -> Any:
    """The cached status brought up to date for changed work-tree paths.

    The index did not change (that would have dirtied the status in full), so for a path whose
    staged side is clean (``X`` is ``.``) the work tree against HEAD is the work tree against the index:
    the diff stat of the changed paths, which the diff refresh reads anyway, tells the status too. Only
    a path it cannot tell (a new file: untracked or ignored? a file with staged changes) costs a
    ``git status`` of the changed paths.
    """
    # Renames pair two paths and conflicts come with merges: those take a full status.
    if (
        t._reads is None
        or t.fs is None
        or not isinstance(prev, dict)
        or prev.get("truncated")
        or prev.get("conflicts")
        or any("from" in e for e in prev.get("changed", ()))
    ):
        return FULL
    fs = t.fs
    ordered = sorted(paths)
    kinds: dict[str, str] = {}

    async def kind_of(path: str) -> None:
        try:
            info = await fs.stat(path)
        except FileNotFoundError:
            kinds[path] = "missing"
            return
        except (FileSystemError, OSError):
            kinds[path] = "other"  # a symlink out of the tree, a refusal: git tells what it is
            return
        kinds[path] = "dir" if info.is_dir else "file" if info.is_file else "other"

    reads = t._reads
    got: list[DiffStat] = []

    async def numstat() -> None:
        # the diff refresh asks for the same at the same moment: one git process serves both
        got.append(await reads.diff_stat(ordered))

    async with trio.open_nursery() as n:
        n.start_soon(numstat)
        for path in ordered:
            n.start_soon(kind_of, path)
    changed = {e["path"]: e for e in prev["changed"]}
    untracked = set(prev["untracked"])
    stat = got[0]
    if any(f.old_path for f in stat.files):
        return FULL
    in_diff = {f.path for f in stat.files}
    derived = True
    for path in ordered:
        kind = kinds[path]
        entry = changed.get(path)
        if kind in ("dir", "other") or (entry is not None and entry["index"] != "."):
            derived = False
            break
        if path in untracked:
            if kind == "missing":
                untracked.discard(path)
            continue
        if path in in_diff:
            changed[path] = {
                "path": path,
                "index": ".",
                "worktree": "D" if kind == "missing" else "M",
            }
        elif entry is not None:
            del changed[path]  # back to the committed content
        elif kind != "missing":
            derived = False  # a new file: untracked, or ignored?
            break
    if derived:
        return _status_dict(
            prev["branch"],
            prev["head"],
            prev["upstream"],
            prev["ahead"],
            prev["behind"],
            list(changed.values()),
            list(untracked),
            [],
        )
    st = await reads.status(ordered)
    if any(isinstance(e, RenamedEntry | UnmergedEntry) for e in st.entries):
        return FULL
    fresh = _status_value(st)
    if fresh["branch"] != prev["branch"] or fresh["head"] != prev["head"]:
        return FULL  # HEAD moved meanwhile: everything compares with another commit
    b = st.branch
    kept = [e for e in prev["changed"] if not _under(e["path"], paths)] + fresh["changed"]
    left = [u for u in prev["untracked"] if not _under(u, paths)] + fresh["untracked"]
    return _status_dict(b.head, b.oid, b.upstream, b.ahead, b.behind, kept, left, [])


async def log_source(t: ContextTarget) -> list[dict[str, Any]]:
    entries = await _need_git(t).log(_LOG_COUNT)
    return [
        {
            "hash": e.oid,
            "subject": e.subject,
            "author": e.author_name,
            "time": e.committer_time.isoformat(),
        }
        for e in entries
    ]


def _diff_dict(files: list[dict[str, Any]]) -> dict[str, Any]:
    files = sorted(files, key=lambda f: str(f["path"]))
    return {
        "files_changed": len(files),
        "insertions": sum(f["added"] or 0 for f in files),
        "deletions": sum(f["deleted"] or 0 for f in files),
        "files": files[:_MAX_ENTRIES],
        "truncated": max(0, len(files) - _MAX_ENTRIES),
    }


def _diff_files(stat: DiffStat) -> list[dict[str, Any]]:
    return [
        {"path": f.path, "added": f.added, "deleted": f.deleted, "old_path": f.old_path}
        for f in stat.files
    ]


async def diff_source(t: ContextTarget) -> dict[str, Any]:
    git = _need_git(t)
    try:
        stat = await git.diff_stat("HEAD")
    except GitCommandError:
        if await git.head() is None:
            return {**_diff_dict([]), "unborn": True}
        raise
    return _diff_dict(_diff_files(stat))


async def diff_refresh(t: ContextTarget, prev: Any, paths: frozenset[str]) -> Any:
    if (
        t._reads is None
        or not isinstance(prev, dict)
        or prev.get("unborn")
        or prev.get("truncated")
        or any(f.get("old_path") for f in prev.get("files", ()))
    ):
        return FULL
    fresh = _diff_files(await t._reads.diff_stat(sorted(paths)))
    if any(f["old_path"] for f in fresh):
        return FULL
    files = [f for f in prev["files"] if not _under(f["path"], paths)] + fresh
    return _diff_dict(files)
