"""The built-in context sources and role profiles.

Each source reads one thing through a protocol (:class:`~engine.Git`, :class:`~engine.FileSystem`, the
worklog store, the session registry) and returns JSON-ready values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from ._context import ContextError, RoleProfile, SourceSpec
from ._errors import InvalidArgumentError
from ._fs import FileSystem, FileTooLargeError
from ._scribe_rules import Aspect
from ._store import SessionRecord, SessionStore, StoreNotFoundError
from ._vcs import Git, GitCommandError, OrdinaryEntry, RenamedEntry, UnmergedEntry, UntrackedEntry
from ._worklog_store import WorklogStore

__all__ = ["DEFAULT_ROLES", "ContextTarget", "default_sources"]

#: The most bytes of one chosen file a context carries.
MAX_FILE_BYTES: Final = 64 * 1024
_MAX_ENTRIES: Final = 500
_LOG_COUNT: Final = 30
_WORKLOG_COUNT: Final = 100
_MAX_RELATED: Final = 20


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
    """

    session_id: str
    git: Git | None = None
    fs: FileSystem | None = None
    store: WorklogStore | None = None
    registry: SessionStore | None = None
    backlog_id: str | None = None
    files: tuple[str, ...] = field(default=())
    pinned: tuple[str, ...] = field(default=())


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


async def _status(t: ContextTarget) -> dict[str, Any]:
    st = await _need_git(t).status()
    b = st.branch
    entries: list[dict[str, Any]] = []
    untracked: list[str] = []
    conflicts: list[str] = []
    for e in st.entries:
        if isinstance(e, UnmergedEntry):
            conflicts.append(e.path)
        elif isinstance(e, RenamedEntry):
            entries.append(
                {"path": e.path, "from": e.orig_path, "index": e.index, "worktree": e.worktree}
            )
        elif isinstance(e, OrdinaryEntry):
            entries.append({"path": e.path, "index": e.index, "worktree": e.worktree})
        elif isinstance(e, UntrackedEntry):
            untracked.append(e.path)
    total = len(entries) + len(untracked) + len(conflicts)
    kept = sum(min(len(x), _MAX_ENTRIES) for x in (entries, untracked, conflicts))
    return {
        "branch": b.head,
        "head": b.oid,
        "upstream": b.upstream,
        "ahead": b.ahead,
        "behind": b.behind,
        "clean": st.clean,
        "changed": entries[:_MAX_ENTRIES],
        "untracked": untracked[:_MAX_ENTRIES],
        "conflicts": conflicts[:_MAX_ENTRIES],
        "truncated": total - kept,
    }


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


async def _diff(t: ContextTarget) -> dict[str, Any]:
    git = _need_git(t)
    try:
        stat = await git.diff_stat("HEAD")
    except GitCommandError:
        if await git.head() is None:
            return {
                "files_changed": 0,
                "insertions": 0,
                "deletions": 0,
                "files": [],
                "unborn": True,
            }
        raise
    return {
        "files_changed": stat.files_changed,
        "insertions": stat.insertions,
        "deletions": stat.deletions,
        "files": [
            {"path": f.path, "added": f.added, "deleted": f.deleted, "old_path": f.old_path}
            for f in stat.files[:_MAX_ENTRIES]
        ],
    }


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
        SourceSpec("status", _status, frozenset({A.TREE, A.INDEX, A.HEAD, A.UPSTREAM})),
        SourceSpec("log", _log, frozenset({A.HEAD})),
        SourceSpec("diff", _diff, frozenset({A.TREE, A.INDEX, A.HEAD})),
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
            s = SourceSpec(
                s.name, s.fetch, s.depends_on, t[s.name], s.max_age, s.path_scoped, s.newest_last
            )
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
