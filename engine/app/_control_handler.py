"""The daemon's request handler: control requests turned into scribe calls, answers made JSON-ready.

No I/O of its own: the control server (``adapters``) reads requests and writes what this returns.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, final

import msgspec

import adapters

from .._core._errors import InvalidArgumentError
from .._core._limits import preview
from .._core._monitoring_switch import MonitoringSwitch
from .._core._state import SessionState
from .._ports._session_store import SessionRecord
from .._scribe._scribe import Scribe
from .._scribe._worklog_markdown import render_markdown
from ._control_hooks import ControlHooks
from ._control_import import ControlImport
from ._control_memory import ControlMemory
from ._control_watch import open_session_events
from ._daemon_info import DaemonInfo

__all__ = ["ControlHandler", "DaemonInfo", "listed_dict", "record_dict"]


def record_dict(r: SessionRecord) -> dict[str, Any]:
    """A session record, JSON-ready."""
    return {
        "id": r.id,
        "name": r.name,
        "kind": r.kind.value,
        "state": r.state.value,
        "priority": r.priority.name.lower(),
        "backlog_id": r.backlog_id,
        "tags": list(r.tags),
        "description": r.description,
        "parent_id": r.parent_id,
        "related_ids": list(r.related_ids),
        "repo_path": None if r.repo_path is None else str(r.repo_path),
        "created_at": r.created_at,
        "last_activity": r.last_activity,
        "idle_timeout": r.idle_timeout,
        "error": r.error,
        "owner": r.owner,
        "agent_session_id": r.agent_session_id,
        "version": r.version,
    }


#: A page of a session list stops growing past this many bytes of JSON (well under the control
#: line limit, whatever the sessions hold).
LIST_PAGE_BYTES: Final = adapters.MAX_CONTROL_LINE // 2
_json: Final = msgspec.json.Encoder(enc_hook=str)
#: Operations not timed into the ``control`` histograms: they stream for as long as a client reads.
_UNTIMED: Final = frozenset({"watch"})


def listed_dict(r: SessionRecord) -> dict[str, Any]:
    """A session record as a list shows it: its description and error cut to a preview
    (:data:`~engine.DESCRIPTION_PREVIEW` characters; ``description_truncated`` says so)."""
    out = record_dict(r)
    out["description"], out["description_truncated"] = preview(r.description)
    if r.error is not None:
        out["error"] = preview(r.error)[0]
    return out


def _states(names: list[str]) -> set[SessionState] | None:
    if not names:
        return None
    out = set()
    for n in names:
        try:
            out.add(SessionState(n.strip().lower()))
        except ValueError:
            raise adapters.ControlProtocolError(
                f"unknown state {n!r}; states: {', '.join(s.value for s in SessionState)}"
            ) from None
    return out


Op = Callable[[Any], Awaitable[Any]]

#: The ``start`` arguments passed on to the scribe when given (left out: the scribe's default).
_START_OPTIONS: Final = (
    "name", "backlog_id", "kind", "priority", "description", "parent", "agent_session_id"
)  # fmt: skip


@final
class ControlHandler:
    """Answers control requests with a :class:`~engine._scribe._scribe.Scribe`.

    Args:
        scribe: the scribe acting on sessions.
        info: what ``status`` reports about the daemon.
        dashboard: the dashboard ``dashboard_url`` makes sign-in links for (None: none runs).
        secret: the daemon's signing secret, for ``mcp_token`` (None: no tokens are made).
        memory: what answers the memory operations (None: they are refused).
        transcripts: what answers ``import_transcript`` and the importer's counters in
            ``status`` (None: refused, not shown).
        hooks: what answers the ``hook`` operation (None: it is refused).
        embedding: the background embedder whose backlog ``status`` shows (None: not shown).
        advice: what ``status`` lists as ``recommendations`` (None: none).
    """

    def __init__(
        self,
        scribe: Scribe,
        info: DaemonInfo,
        *,
        dashboard: adapters.Dashboard | None = None,
        secret: str | None = None,
        memory: ControlMemory | None = None,
        transcripts: ControlImport | None = None,
        hooks: ControlHooks | None = None,
        embedding: adapters.EmbeddingBackfill | None = None,
        advice: Callable[[], list[str]] | None = None,
        monitoring: MonitoringSwitch | None = None,
    ) -> None:
        self.scribe = scribe
        self._monitoring = monitoring
        self._advice = advice
        self.info = info
        self.embedding = embedding
        self.dashboard = dashboard
        self._secret = secret
        self._ops: dict[str, Op] = {
            "ping": self._ping,
            "status": self._status,
            "dashboard_url": self._dashboard_url,
            "start": self._start,
            "stop": self._stop,
            "adopt": self._adopt,
            "list": self._list,
            "append": self._append,
            "tag": self._tag,
            "untag": self._untag,
            "info": self._info,
            "context": self._context,
            "worklog": self._worklog,
            "summary": self._summary,
            "cleanup": self._cleanup,
            "validate": self._validate,
            "watch": self._watch,
            "mcp_token": self._mcp_token,
            "monitoring": self._switch_monitoring,
        }
        if memory is not None:
            self._ops.update(memory.ops)
        self.transcripts = transcripts
        if transcripts is not None:
            self._ops.update(transcripts.ops)
        if hooks is not None:
            self._ops.update(hooks.ops)

    async def handle(self, request: adapters.ControlRequest) -> Any:
        """The JSON-ready result of a validated request (or the scribe's typed error).

        Cancellation: as the scribe call it makes.
        """
        op = self._ops.get(request.op)
        if op is None:
            raise InvalidArgumentError(f"this daemon does not serve {request.op!r}")
        if request.op in _UNTIMED:
            return await op(request.args)
        with self.scribe.engine.latencies.time("control", request.op):
            return await op(request.args)

    async def _ping(self, a: adapters.PingArgs) -> Any:
        return {"pong": True, "pid": self.info.pid}

    async def _status(self, a: adapters.StatusArgs) -> Any:
        s = self.scribe
        stats = s.engine.statistics()
        out: dict[str, Any] = {
            **self.info.as_dict(),
            "uptime": time.time() - self.info.started_at,
            "cpu_seconds": time.process_time(),
            "live_sessions": s.live(),
            "engine": {
                "state": stats.state,
                "sessions_by_state": stats.sessions_by_state,
                "events_published": stats.events_published,
                "subscribers": stats.subscribers,
                "service_errors": stats.service_errors,
            },
        }
        if s.pipeline is not None:
            p = s.pipeline.statistics()
            out["summaries"] = {
                "queued": p.queued,
                "made": p.summaries,
                "errors": p.errors,
                "last_error": p.last_error,
            }
        if s.context is not None:
            c = s.context.statistics()
            out["context"] = {
                "gathers": c.gathers,
                "served_from_cache": c.served_from_cache,
                "fetched": c.fetched,
                "errors": c.errors,
                "timeouts": c.timeouts,
            }
        if self.transcripts is not None:
            out["transcripts"] = self.transcripts.importer.statistics().as_dict()
        if self.embedding is not None:
            out["embedding"] = dataclasses.asdict(self.embedding.statistics())
        out["gates"] = {
            name: {"capacity": g.capacity, "adaptive": name in stats.adaptive}
            for name, g in stats.gates.items()
        }
        out["monitoring"] = self._monitoring is not None and self._monitoring.enabled
        out["recommendations"] = [] if self._advice is None else self._advice()
        return out

    async def _switch_monitoring(self, a: adapters.MonitoringArgs) -> Any:
        switch = self._monitoring
        if switch is None:
            if a.enabled:
                raise InvalidArgumentError(
                    "this daemon runs with monitoring = false in its configuration: restart it"
                    " with monitoring = true to switch it on"
                )
            return {"enabled": False}
        if a.enabled is not None:
            switch.set_nowait(a.enabled)
        return {"enabled": switch.enabled}

    async def _dashboard_url(self, a: adapters.DashboardUrlArgs) -> Any:
        if self.dashboard is None:
            raise InvalidArgumentError(
                "this daemon serves no dashboard (it runs with --no-dashboard)"
            )
        return {"url": self.dashboard.login_url(), "expires_in": adapters.LOGIN_TOKEN_TTL}

    async def _start(self, a: adapters.StartArgs) -> Any:
        kwargs: dict[str, Any] = {
            k: getattr(a, k) for k in _START_OPTIONS if getattr(a, k) is not None
        }
        kwargs.update(tags=tuple(a.tags), related=tuple(a.related), files=tuple(a.files))
        if a.idle_timeout is not msgspec.UNSET:
            kwargs["idle_timeout"] = a.idle_timeout
        record = await self.scribe.start(a.repo, **kwargs)
        return record_dict(record)

    async def _stop(self, a: adapters.StopArgs) -> Any:
        record = await self.scribe.resolve(a.session)
        return record_dict(await self.scribe.stop(record.id))

    async def _adopt(self, a: adapters.AdoptArgs) -> Any:
        return record_dict(await self.scribe.adopt(a.session))

    async def _list(self, a: adapters.ListArgs) -> Any:
        if a.repo is not None and not os.path.isabs(a.repo):
            raise InvalidArgumentError(
                f"repo must be an absolute path (the daemon's working directory is not yours), "
                f"not {a.repo!r}"
            )
        records = await self.scribe.sessions(
            states=_states(a.states), tags=a.tags, repo=a.repo, limit=a.limit + 1, after=a.after
        )
        page: list[dict[str, Any]] = []
        size = 0
        named = {r.owner for r in records[: a.limit] if r.owner is not None}
        owners = await self.scribe.registry.owners(named) if named else {}
        for r in records[: a.limit]:
            listed = listed_dict(r)
            owner = owners.get(r.owner) if r.owner is not None else None
            listed["daemon"] = None if owner is None else owner.as_dict()
            size += len(_json.encode(listed))
            if page and size > LIST_PAGE_BYTES:
                break
            page.append(listed)
        more = len(records) > len(page)
        return {"sessions": page, "next": page[-1]["id"] if more else None}

    async def _append(self, a: adapters.AppendArgs) -> Any:
        return (await self.scribe.append_note(a.session, a.text)).as_dict()

    async def _tag(self, a: adapters.TagArgs) -> Any:
        return record_dict(await self.scribe.tag(a.session, a.tags))

    async def _untag(self, a: adapters.UntagArgs) -> Any:
        return record_dict(await self.scribe.tag(a.session, a.tags, remove=True))

    async def _info(self, a: adapters.InfoArgs) -> Any:
        record = await self.scribe.resolve(a.session)
        cap = self.scribe.capture_info(record.id)
        _, summary = await self.scribe.summary(record.id)
        return {
            "session": record_dict(record),
            "capture": None if cap is None else cap.as_dict(),
            "entries": await self.scribe.store.last_seq(record.id),
            "summary": None if summary is None else summary.as_dict(),
            "context_dirty": (
                sorted(self.scribe.context.dirty(record.id))
                if self.scribe.context is not None and self.scribe.context.attached(record.id)
                else None
            ),
        }

    async def _context(self, a: adapters.ContextArgs) -> Any:
        ctx = await self.scribe.context_for(a.session, a.role or "implementer")
        return ctx.as_dict()

    async def _worklog(self, a: adapters.WorklogArgs) -> Any:
        record, entries = await self.scribe.worklog(
            a.session, limit=a.limit, since=a.since, before=a.before
        )
        out: dict[str, Any] = {
            "session": record_dict(record),
            "entries": [e.as_dict() for e in entries],
        }
        if a.markdown:
            _, summary = await self.scribe.summary(record.id)
            out["markdown"] = render_markdown(
                entries,
                title=f"Worklog: {record.name}",
                meta={
                    "session": record.id,
                    "backlog": record.backlog_id,
                    "state": record.state.value,
                    "repository": None if record.repo_path is None else str(record.repo_path),
                },
                summary=summary,
            )
        return out

    async def _summary(self, a: adapters.SummaryArgs) -> Any:
        record, summary = await self.scribe.summary(a.session)
        return {
            "session": record_dict(record),
            "summary": None if summary is None else summary.as_dict(),
        }

    async def _cleanup(self, a: adapters.CleanupArgs) -> Any:
        states = _states(a.states)
        removed = await self.scribe.cleanup(a.days, states=states)
        return {"removed": removed}

    async def _validate(self, a: adapters.ValidateArgs) -> Any:
        marked = await self.scribe.validate()
        return {"orphaned": [record_dict(r) for r in marked]}

    async def _watch(self, a: adapters.WatchArgs) -> Any:
        record = await self.scribe.resolve(a.session)
        return adapters.ControlStream(
            {"session": record_dict(record)},
            lambda: open_session_events(self.scribe.engine, record.id),
        )

    async def _mcp_token(self, a: adapters.McpTokenArgs) -> Any:
        if self.dashboard is None or self._secret is None:
            raise InvalidArgumentError(
                "this daemon serves no dashboard, so no /mcp endpoint (it runs with --no-dashboard)"
            )
        ttl = a.days * 86400.0
        token = adapters.make_mcp_token(self._secret, ttl, subject=a.name)
        return {"token": token, "url": f"{self.dashboard.url}mcp", "expires_at": time.time() + ttl}
