"""The built-in context sources and role profiles.

Each source reads one thing through a protocol (:class:`~engine.Git`, :class:`~engine.FileSystem`, the
worklog store, the session registry) and returns JSON-ready values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, final

import trio

from .._core._errors import InvalidArgumentError
from .._core._singleflight import SingleFlight, SingleFlightError
from .._ports._fs import FileSystem, FileTooLargeError
from .._ports._git import (
    DiffStat,
    Git,
    GitCommandError,
    OrdinaryEntry,
    RenamedEntry,
    Status,
    UnmergedEntry,
    UntrackedEntry,
)
from .._ports._session_store import SessionRecord, SessionStore, StoreNotFoundError
from .._ports._worklog_store import WorklogStore
from .._scribe._rules import Aspect
from ._provider import FULL, ContextError, RoleProfile, SourceSpec

__all__ = ["DEFAULT_ROLES", "ContextTarget", "default_sources"]

#: The most bytes of one chosen file a context carries.
MAX_FILE_BYTES: Final = 64 * 1024
_MAX_ENTRIES: Final = 500
_LOG_COUNT: Final = 30
_WORKLOG_COUNT: Final = 100
_MAX_RELATED: Final = 20


_T = TypeVar("_T")


@final
class _PathReads:
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


@dataclass(frozen=True, slots=True)
class ContextTarget:
    """What the sources of one session read.

    Attributes:
        session_id: the session.
        git: its work tree (None: the git sources report an error).
        fs: its files (None: the files source reports an error).
        store: the worklog store.
        registry: the session registry.
        backlog_id: its backlog id.
        files: every chosen file (root-relative) any role may want.
        pinned: files chosen for the session itself, shown to every role.

    Status and diff are brought up to date after a change of a few known paths by git reads
    limited to those paths; the reads of one target share identical git processes.
    """

    session_id: str
    git: Git | None = None
    fs: FileSystem | None = None
    store: WorklogStore | None = None
    registry: SessionStore | None = None
    backlog_id: str | None = None
    files: tuple[str, ...] = field(default=())
    pinned: tuple[str, ...] = field(default=())
    _reads: _PathReads | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_reads", None if self.git is None else _PathReads(self.git))


def _need_git(t: ContextTarget) -> Git:
    if t.git is None:
        raise ContextError("the session has no work tree")
    return t.git


async def _branch(t: ContextTarget) -> dict[str, Any]:
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


async def _status(t: ContextTarget) -> dict[str, Any]:
    return _status_value(await _need_git(t).status())


async def _status_refresh(t: ContextTarget, prev: Any, paths: frozenset[str]) -> Any:
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
        kinds[path] = "dir" if info.is_dir else "file"

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
        if kind == "dir" or (entry is not None and entry["index"] != "."):
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


async def _log(t: ContextTarget) -> list[dict[str, Any]]:
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


async def _diff(t: ContextTarget) -> dict[str, Any]:
    git = _need_git(t)
    try:
        stat = await git.diff_stat("HEAD")
    except GitCommandError:
        if await git.head() is None:
            return {**_diff_dict([]), "unborn": True}
        raise
    return _diff_dict(_diff_files(stat))


async def _diff_refresh(t: ContextTarget, prev: Any, paths: frozenset[str]) -> Any:
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


async def _worklog(t: ContextTarget) -> list[dict[str, Any]]:
    if t.store is None:
        raise ContextError("no worklog store")
    entries = await t.store.entries(t.session_id, limit=_WORKLOG_COUNT, newest=True)
    return [e.as_dict() for e in entries]


async def _summary(t: ContextTarget) -> dict[str, Any] | None:
    if t.store is None:
        raise ContextError("no worklog store")
    s = await t.store.latest_summary(t.session_id)
    return None if s is None else s.as_dict()


def _brief(r: SessionRecord, relation: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "state": r.state.value,
        "kind": r.kind.value,
        "backlog_id": r.backlog_id,
        "relation": relation,
        "last_activity": r.last_activity,
    }


async def _related(t: ContextTarget) -> list[dict[str, Any]]:
    reg = t.registry
    if reg is None:
        raise ContextError("no session registry")
    me = await reg.get(t.session_id)
    found: dict[str, dict[str, Any]] = {}
    if me.parent_id:
        try:
            found[me.parent_id] = _brief(await reg.get(me.parent_id), "parent")
        except StoreNotFoundError:
            pass
    for child in await reg.query(parent_id=me.id, limit=_MAX_RELATED):
        found.setdefault(child.id, _brief(child, "child"))
    for rid in me.related_ids[:_MAX_RELATED]:
        if rid not in found:
            try:
                found[rid] = _brief(await reg.get(rid), "related")
            except StoreNotFoundError:
                pass
    if me.backlog_id:
        for other in await reg.query(backlog_id=me.backlog_id, limit=_MAX_RELATED + 1):
            found.setdefault(other.id, _brief(other, "same backlog item"))
    found.pop(me.id, None)
    return list(found.values())[:_MAX_RELATED]


async def _files(t: ContextTarget) -> list[dict[str, Any]]:
    fs = t.fs
    if fs is None:
        raise ContextError("the session has no work tree")
    out: dict[str, dict[str, Any]] = {}

    async def read(path: str) -> None:
        try:
            text = await fs.read_text(path, max_size=MAX_FILE_BYTES)
        except FileNotFoundError:
            return
        except IsADirectoryError:
            return
        except FileTooLargeError as exc:
            out[path] = {"path": path, "text": None, "error": f"larger than {exc.limit} bytes"}
            return
        except UnicodeDecodeError:
            out[path] = {"path": path, "text": None, "error": "not UTF-8 text"}
            return
        out[path] = {"path": path, "text": text}

    async with trio.open_nursery() as n:
        for path in t.files:
            n.start_soon(read, path)
    return [out[p] for p in t.files if p in out]


def default_sources(
    *, timeouts: Mapping[str, float] | None = None, related_max_age: float = 30.0
) -> dict[str, SourceSpec]:
    """The built-in sources: branch, status, log, diff, worklog, summary, related, files.

    Args:
        timeouts: per-source deadlines in seconds (default 2 s each).
        related_max_age: seconds the related-sessions answer stays good (other sessions change
            without touching this one's tree).

    Raises:
        InvalidArgumentError: a timeout names an unknown source.
    """
    t = dict(timeouts or {})
    A = Aspect
    specs = [
        SourceSpec("branch", _branch, frozenset({A.HEAD})),
        SourceSpec(
            "status",
            _status,
            frozenset({A.TREE, A.INDEX, A.HEAD, A.UPSTREAM}),
            refresh=_status_refresh,
        ),
        SourceSpec("log", _log, frozenset({A.HEAD})),
        SourceSpec("diff", _diff, frozenset({A.TREE, A.INDEX, A.HEAD}), refresh=_diff_refresh),
        SourceSpec("worklog", _worklog, frozenset({A.WORKLOG}), newest_last=True),
        SourceSpec("summary", _summary, frozenset({A.SUMMARY})),
        SourceSpec("related", _related, frozenset({A.REGISTRY}), max_age=related_max_age),
        SourceSpec("files", _files, frozenset({A.TREE}), path_scoped=True),
    ]
    names = {s.name for s in specs}
    unknown = set(t) - names
    if unknown:
        raise InvalidArgumentError(f"timeouts name unknown sources: {sorted(unknown)}")
    out = {}
    for s in specs:
        if s.name in t:
            s = dataclasses.replace(s, timeout=t[s.name])
        out[s.name] = s
    return out


_PLANNING_FILES: Final = (
    "PRD.md",
    "docs/PRD.md",
    "backlog/{backlog}.md",
    "TASKS.md",
    "tasks.md",
    "TODO.md",
)

#: What each role sees.
DEFAULT_ROLES: Final[Mapping[str, RoleProfile]] = {
    "planner": RoleProfile(
        ("branch", "log", "summary", "worklog", "related", "files"),
        {"log": 20, "worklog": 20},
        _PLANNING_FILES,
    ),
    "implementer": RoleProfile(
        ("branch", "status", "diff", "log", "summary", "worklog", "files"),
        {"log": 10, "worklog": 30},
        ("backlog/{backlog}.md", "TASKS.md", "tasks.md", "TODO.md"),
    ),
    "coder": RoleProfile(
        ("branch", "status", "diff", "worklog", "files"),
        {"worklog": 50},
        ("backlog/{backlog}.md", "TODO.md"),
    ),
    "researcher": RoleProfile(
        ("branch", "log", "summary", "related", "files"),
        {"log": 10},
        ("README.md", "docs/README.md", "PRD.md", "docs/PRD.md"),
    ),
    "reviewer": RoleProfile(
        ("branch", "status", "diff", "log", "summary", "worklog", "related"),
        {"log": 20, "worklog": 30},
        (),
    ),
}
