"""The built-in context sources: the session's worklog, summary, related sessions and chosen files,
the git ones (:mod:`engine._context._git_sources`), and what every source of one session reads.

Each source reads one thing through a protocol (:class:`~engine.Git`, :class:`~engine.FileSystem`, the
worklog store, the session registry) and returns JSON-ready values.
"""

from __future__ import annotations

import dataclasses
import errno
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import trio

from .._core._errors import InvalidArgumentError
from .._ports._fs import (
    FileSystem,
    FileSystemError,
    FileTooLargeError,
    NotRegularFileError,
    PathEscapeError,
)
from .._ports._git import Git
from .._ports._session_store import SessionRecord, SessionStore, StoreNotFoundError
from .._ports._worklog_store import WorklogStore
from .._scribe._rules import Aspect
from ._git_sources import (
    PathReads,
    branch_source,
    diff_refresh,
    diff_source,
    log_source,
    status_refresh,
    status_source,
)
from ._spec import ContextError, SourceSpec

__all__ = ["MAX_FILE_BYTES", "ContextTarget", "default_sources"]

#: The most bytes of one chosen file a context carries.
MAX_FILE_BYTES: Final = 64 * 1024
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
    _reads: PathReads | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_reads", None if self.git is None else PathReads(self.git))


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


def _file_error(exc: Exception) -> str:
    """What went wrong reading one chosen file, in words (the path is shown beside it)."""
    if isinstance(exc, FileTooLargeError):
        return f"larger than {exc.limit} bytes"
    if isinstance(exc, NotRegularFileError):
        return f"not a regular file (a {exc.kind})"
    if isinstance(exc, OSError) and exc.errno == errno.EISDIR:
        return "not a regular file (a directory)"
    if isinstance(exc, PathEscapeError):
        return "outside the work tree"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot be read: {exc.strerror[:1].lower()}{exc.strerror[1:]}"
    return f"cannot be read: {type(exc).__name__}"


async def _files(t: ContextTarget) -> list[dict[str, Any]]:
    """Each chosen file's text, or why it cannot be shown: one bad file fails only itself.

    A missing file is left out (the roles name candidates: ``TODO.md``, ``tasks.md``, ...).
    """
    fs = t.fs
    if fs is None:
        raise ContextError("the session has no work tree")
    out: dict[str, dict[str, Any]] = {}

    async def read(path: str) -> None:
        try:
            text = await fs.read_text(path, max_size=MAX_FILE_BYTES)
        except FileNotFoundError:
            return
        except (FileSystemError, OSError, UnicodeDecodeError) as exc:
            out[path] = {"path": path, "text": None, "error": _file_error(exc)}
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
        SourceSpec("branch", branch_source, frozenset({A.HEAD})),
        SourceSpec(
            "status",
            status_source,
            frozenset({A.TREE, A.INDEX, A.HEAD, A.UPSTREAM}),
            refresh=status_refresh,
        ),
        SourceSpec("log", log_source, frozenset({A.HEAD})),
        SourceSpec("diff", diff_source, frozenset({A.TREE, A.INDEX, A.HEAD}), refresh=diff_refresh),
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
