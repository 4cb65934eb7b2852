"""``scribe serve``: the daemon, wiring the real adapters to the engine.

Like :mod:`engine.app._cli`, this is the wiring layer: it is the one place in ``engine`` that imports
``adapters`` (inside :func:`run_daemon`), so the rest of the engine stays driver-free.

The daemon runs the engine, the database (the embedded server unless a URL is configured), the session
registry (marking sessions a dead daemon left as orphaned), the summary pipeline, the scribe, the live
feed, the dashboard and the control socket. SIGINT or SIGTERM shuts it down gracefully: live sessions
get their stop entry and final state, summaries are flushed, servers close. A second signal cancels
what is left at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Final

import trio

from .._context._provider import ContextProvider
from .._core._engine import EngineConfig, default_home, open_engine
from .._core._errors import ScribeError
from .._core._health import run_health_monitor
from .._ports._git import NotARepositoryError
from .._scribe._rules import EndRules
from .._scribe._scribe import ScribeConfig, open_scribe
from .._scribe._summary import HeuristicSummarizer
from .._scribe._summary_pipeline import SummaryPipeline
from .._scribe._worklog import EndReason
from ._control_handler import ControlHandler, DaemonInfo

__all__ = ["DaemonLockedError", "ServeOptions", "run_daemon", "socket_path"]

SOCKET_NAME: Final = "scribe.sock"
LOCK_NAME: Final = "scribe.lock"
SECRET_NAME: Final = "feed.secret"
TOKEN_TTL: Final = 30 * 24 * 3600.0


class DaemonLockedError(ScribeError):
    """Another daemon holds this home's lock."""


def socket_path(home: Path | None = None) -> Path:
    """The control socket of the daemon of ``home`` (default: ``$SCRIBE_HOME``)."""
    return (home if home is not None else default_home()) / SOCKET_NAME


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """How ``scribe serve`` runs.

    Attributes:
        home: the daemon's home (socket, lock, feed secret, embedded database).
        database_url: a PostgreSQL URL (None: ``$SCRIBE_DATABASE_URL``, else the embedded server).
        repo: a repository to start a session on (None: none).
        host: the interface the feed and the dashboard listen on.
        feed_port: the feed's TCP port (0: any free one).
        dashboard_port: the dashboard's TCP port (0: any free one; None: no dashboard).
        idle_timeout: the default idle timeout of sessions (None: never).
        end_on_branch_switch: a branch switch ends a session.
        end_on_push: a completed push (HEAD at its upstream, tree clean) ends a session.
        mirror: the worklog mirror path template inside each work tree (None: no mirror).
        pool_size: database connections.
        summary_interval: the least seconds between two summaries of one session.
    """

    home: Path = field(default_factory=default_home)
    database_url: str | None = None
    repo: Path | None = None
    host: str = "127.0.0.1"
    feed_port: int = 0
    dashboard_port: int | None = 0
    idle_timeout: float | None = 30 * 60.0
    end_on_branch_switch: bool = True
    end_on_push: bool = True
    mirror: str | None = None
    pool_size: int = 4
    summary_interval: float = 2.0


@contextlib.contextmanager
def _home_lock(home: Path) -> Iterator[IO[str]]:
    home.mkdir(parents=True, exist_ok=True)
    f = open(home / LOCK_NAME, "a+")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "?"
            raise DaemonLockedError(
                f"another scribe daemon (pid {pid}) already runs with home {home}"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield f
    finally:
        f.close()


def _feed_secret(home: Path) -> str:
    path = home / SECRET_NAME
    try:
        secret = path.read_text().strip()
        if len(secret) >= 32:
            return secret
    except FileNotFoundError:
        pass
    secret = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret


def _display_url(url: str | None, home: Path) -> str:
    if url is None:
        return f"embedded PostgreSQL (data in {home / 'pgdata'})"
    if "://" in url:
        parts = urllib.parse.urlsplit(url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        return url
    return " ".join("password=***" if kv.startswith("password=") else kv for kv in url.split())


async def run_daemon(
    options: ServeOptions,
    *,
    ready: Callable[[DaemonInfo, list[str]], None] | None = None,
    stop: trio.Event | None = None,
    handle_signals: bool = True,
) -> None:
    """Run the daemon until ``stop`` is set or SIGINT/SIGTERM arrives, then shut down gracefully.

    Args:
        options: how to run.
        ready: called once everything listens, with where to look and notes (orphans found, ...).
        stop: an event that stops the daemon (None: only signals do).
        handle_signals: install SIGINT/SIGTERM handlers (only in the main thread).

    Raises:
        DaemonLockedError: another daemon runs with the same home.
        DaemonAlreadyRunningError: another daemon answers on the socket.
        DatabaseError: the database cannot be reached or started.

    Cancellation: everything is closed on the way out (shielded and bounded where it must be).
    """
    stopping = stop if stop is not None else trio.Event()
    with _home_lock(options.home):
        async with trio.open_nursery() as top:
            if handle_signals:

                async def signals() -> None:
                    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as rx:
                        count = 0
                        async for _ in rx:
                            count += 1
                            stopping.set()
                            if count > 1:
                                top.cancel_scope.cancel()
                                return

                top.start_soon(signals)
            await _serve(options, ready, stopping)
            top.cancel_scope.cancel()


async def _serve(
    options: ServeOptions,
    ready: Callable[[DaemonInfo, list[str]], None] | None,
    stopping: trio.Event,
) -> None:
    import adapters
    from adapters.control._socket import open_control_server
    from adapters.postgres._worklog_store import PostgresWorklogStore

    home = options.home
    url = options.database_url or os.environ.get("SCRIBE_DATABASE_URL") or None
    secret = _feed_secret(home)
    token = adapters.make_token(secret, adapters.FeedScopes.read_all(), TOKEN_TTL, subject="scribe")
    config = EngineConfig(
        home=home,
        database_url=url,
        gates={"db": options.pool_size, "summarizer": 1},
        shutdown_grace=5.0,
    )
    async with contextlib.AsyncExitStack() as stack:
        eng = await stack.enter_async_context(open_engine(config))
        db = await stack.enter_async_context(
            adapters.open_database(url, home=home, pool_size=options.pool_size, gate=eng.gate("db"))
        )
        registry = await stack.enter_async_context(adapters.open_session_registry(db))
        notes: list[str] = []
        orphans = await registry.mark_orphans()
        if orphans:
            notes.append(
                f"marked {len(orphans)} session(s) left by a stopped daemon as orphaned: "
                + ", ".join(r.id for r in orphans)
            )
        store = PostgresWorklogStore(db)
        context = ContextProvider(eng)
        pipeline = SummaryPipeline(
            eng,
            store,
            HeuristicSummarizer(),
            min_interval=options.summary_interval,
            on_summary=lambda s: context.note_summary(s.session_id, s.as_dict()),
        )
        services = await stack.enter_async_context(trio.open_nursery())
        services.start_soon(pipeline.run)

        async def drain_summaries() -> None:
            # After the scribe has stopped every session: let their final summaries land.
            with trio.move_on_after(5):
                await pipeline.wait_idle()
            services.cancel_scope.cancel()

        stack.push_async_callback(drain_summaries)

        async def open_repo(path: Path) -> Any:
            return await adapters.open_repository(path, gate=eng.gate("git"))

        scribe = await stack.enter_async_context(
            open_scribe(
                eng,
                registry=registry,
                store=store,
                open_repo=open_repo,
                open_fs=lambda root: adapters.ScopedFileSystem(root, gate=eng.gate("fs")),
                open_watcher=adapters.open_watcher,
                config=ScribeConfig(
                    end_rules=EndRules(
                        idle_timeout=options.idle_timeout,
                        on_branch_switch=options.end_on_branch_switch,
                        on_push=options.end_on_push,
                    ),
                    mirror=options.mirror,
                ),
                pipeline=pipeline,
                context=context,
            )
        )
        eng.start_service(run_health_monitor, eng, 2.0, name="health monitor")
        feed = await stack.enter_async_context(
            adapters.open_feed_server(eng, secret=secret, host=options.host, port=options.feed_port)
        )
        dash = None
        if options.dashboard_port is not None:
            dash = await stack.enter_async_context(
                adapters.open_dashboard(
                    eng,
                    feed_url=feed.url,
                    token=token,
                    host=options.host,
                    port=options.dashboard_port,
                    feed=feed,
                )
            )
        info = DaemonInfo(
            home=str(home),
            socket=str(socket_path(home)),
            database=_display_url(url, home),
            feed_url=feed.url,
            dashboard_url=None if dash is None else dash.url,
            token=token,
        )
        handler = ControlHandler(scribe, info)
        await stack.enter_async_context(open_control_server(socket_path(home), handler.handle))
        if options.repo is not None:
            try:
                rec = await scribe.start(options.repo)
            except NotARepositoryError as exc:
                notes.append(f"no session started: {exc}")
            else:
                handler.info = info = replace(info, repo=str(rec.repo_path), session=rec.id)
        if ready is not None:
            ready(info, notes)
        await stopping.wait()
        await scribe.aclose(EndReason.SHUTDOWN)
