"""``scribe serve``: the daemon, run on the stack :func:`~engine.app.open_stack` wires.

The daemon holds its home's lock, opens the stack (engine, database, session registry, summary
pipeline, scribe, live feed, dashboard), marks the sessions a dead daemon left as orphaned, and
serves the control socket. SIGINT or SIGTERM shuts it down gracefully: live sessions get their stop
entry and final state, summaries are flushed, servers close. A second signal cancels what is left at
once.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import logging
import os
import signal
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Final

import trio

import adapters
from scribe_cli._home import socket_path

from .._core._errors import ScribeError
from .._core._privacy import Privacy
from .._ports._git_errors import NotARepositoryError
from .._ports._worklog_records import EndReason
from ._change_relay import relay_changes
from ._cluster_settings import orphan_sweep_interval
from ._config import AppConfig
from ._control_handler import ControlHandler, DaemonInfo
from ._control_hooks import ControlHooks
from ._control_import import ControlImport
from ._control_memory import ControlMemory
from ._home import prepare_home, private_file
from ._logging import daemon_logging
from ._mcp_backend import HandlerBackend
from ._orphan_sweep import sweep_orphans_forever
from ._recommendations import recommendations
from ._stack import feed_secret, open_stack
from ._version import scribe_version

__all__ = ["DaemonLockedError", "Ready", "run_daemon", "socket_path"]

_log = logging.getLogger(__name__)

LOCK_NAME: Final = "scribe.lock"
#: The owner id of the home's last daemon (its lease is ended by the next one).
OWNER_NAME: Final = "scribe.owner"


#: What :func:`run_daemon` calls once it is ready: ``(info, notes, dashboard sign-in link)``.
Ready = Callable[[DaemonInfo, list[str], str | None], None]


class DaemonLockedError(ScribeError):
    """Another daemon holds this home's lock."""


@contextlib.contextmanager
def _home_lock(home: Path) -> Iterator[IO[str]]:
    f = os.fdopen(private_file(home / LOCK_NAME, os.O_RDWR | os.O_APPEND), "a+")
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


@contextlib.contextmanager
def _daemon_log(config: AppConfig, on: bool, privacy: Privacy) -> Iterator[None]:
    if not on:
        yield
        return
    with daemon_logging(
        config.home, level=config.log_level, fmt=config.log_format, privacy=privacy
    ):
        _log.info("scribe %s starting with home %s", scribe_version(), config.home)
        try:
            yield
        except Exception as exc:
            _log.error("the daemon stopped on an error: %s", exc, exc_info=exc)
            raise
        _log.info("scribe stopped")


@contextlib.asynccontextmanager
async def _open_dashboard_endpoints(
    dashboard: adapters.Dashboard | None, handler: ControlHandler, secret: str
) -> AsyncIterator[None]:
    """``/mcp`` and the page's JSON routes over the control operations on the dashboard for the
    duration of the block (nothing without a dashboard); both call ``handler`` in this process."""
    if dashboard is None:
        yield
        return
    backend = HandlerBackend(handler)
    async with (
        adapters.open_mcp_app(backend, version=scribe_version()) as app,
        adapters.open_mcp_http(
            app, secret=secret, hosts=dashboard.hosts, port=dashboard.port
        ) as http,
    ):
        dashboard.serve_mcp(http)
        dashboard.serve_control(backend.call)
        try:
            yield
        finally:
            dashboard.serve_control(None)
            dashboard.serve_mcp(None)


async def run_daemon(
    config: AppConfig,
    *,
    repo: Path | None = None,
    ready: Ready | None = None,
    stop: trio.Event | None = None,
    handle_signals: bool = True,
    log_to_home: bool = False,
) -> None:
    """Run the daemon until ``stop`` is set or SIGINT/SIGTERM arrives, then shut down gracefully.

    Args:
        config: how to run (home, database, ports, end rules ...).
        repo: a repository to start a session on (None: none).
        ready: called once everything listens, with where to look, notes (orphans found, the
            home's permissions tightened ...) and a one-time dashboard sign-in link (None: no
            dashboard).
        stop: an event that stops the daemon (None: only signals do).
        handle_signals: install SIGINT/SIGTERM handlers (only in the main thread).
        log_to_home: once the home's lock is held, log to standard error and the home's rotating
            log file at ``config.log_level`` in ``config.log_format`` (see ``_logging``).

    Raises:
        DaemonLockedError: another daemon runs with the same home.
        DaemonAlreadyRunningError: another daemon answers on the socket.
        DatabaseError: the database cannot be reached or started.

    Cancellation: everything is closed on the way out (shielded and bounded where it must be).
    """
    stopping = stop if stop is not None else trio.Event()
    tightened = prepare_home(config.home)
    privacy = config.privacy()
    with _home_lock(config.home), _daemon_log(config, log_to_home, privacy):
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
            await _serve(config, repo, ready, stopping, tightened, privacy)
            top.cancel_scope.cancel()


async def _serve(
    config: AppConfig,
    repo: Path | None,
    ready: Ready | None,
    stopping: trio.Event,
    notes: list[str],
    privacy: Privacy,
) -> None:
    home = config.home
    async with open_stack(config, privacy=privacy) as stack:
        # This home's previous daemon is gone (this one holds the home lock): its lease ends now,
        # so its sessions are orphaned at once and what its journal carried is stored below.
        owner_file = home / OWNER_NAME
        with contextlib.suppress(OSError, UnicodeDecodeError):
            previous = owner_file.read_text().strip()
            if previous:
                await stack.registry.end_lease_of(previous[:500])
        fd = private_file(owner_file, os.O_WRONLY | os.O_TRUNC)
        with os.fdopen(fd, "w") as out:
            out.write(stack.registry.owner_id + "\n")
        orphans = await stack.registry.mark_orphans()
        if orphans and stack.scribe.replayer is not None:
            # What a dead daemon's journal carried can be stored now that its sessions are no
            # longer live (only an owner writes a live session): before the daemon says it is up.
            await stack.scribe.replayer.replay()
        if orphans:
            notes.append(
                f"marked {len(orphans)} session(s) left by a stopped daemon as orphaned: "
                + ", ".join(r.id for r in orphans)
            )
        info = DaemonInfo(
            home=str(home),
            socket=socket_path(home),
            database=_display_url(config.database_url, home),
            embedder=f"{config.embedder}: {adapters.describe_embedder(stack.embedder)}",
            feed_url=None if stack.feed is None else stack.feed.url,
            dashboard_url=None if stack.dashboard is None else stack.dashboard.url,
            token=stack.token,
        )
        memory = ControlMemory(
            memory=stack.memory,
            sources=stack.memory_sources,
            cache=stack.generation_cache,
            scribe=stack.scribe,
            default_session=config.session,
            privacy=stack.privacy,
        )
        transcripts = ControlImport(
            importer=stack.transcripts,
            scribe=stack.scribe,
            registry=stack.registry,
            repo_key=memory.repo_key,
        )
        hooks = ControlHooks(
            scribe=stack.scribe,
            memory=memory,
            importer=stack.transcripts,
            privacy=stack.privacy,
            briefing_budget=config.briefing_budget,
            recall=config.hook_recall,
        )
        stack.engine.start_service(hooks.run, name="agent hooks")
        sweep = orphan_sweep_interval(config)
        stack.engine.start_service(
            sweep_orphans_forever, stack.scribe, sweep, config.adopt_orphans, name="orphan sweep"
        )
        handler = ControlHandler(
            stack.scribe,
            info,
            dashboard=stack.dashboard,
            memory=memory,
            transcripts=transcripts,
            hooks=hooks,
            secret=feed_secret(home),
            embedding=stack.backfill,
            advice=functools.partial(recommendations, stack),
            monitoring=stack.monitoring,
        )
        async with (
            adapters.open_change_listener(stack.db.url) as notices,
            adapters.open_control_server(socket_path(home), handler.handle),
            _open_dashboard_endpoints(stack.dashboard, handler, feed_secret(home)),
        ):
            stack.engine.start_service(relay_changes, stack, notices, name="change relay")
            if repo is not None:
                try:
                    rec = await stack.scribe.start(repo)
                except NotARepositoryError as exc:
                    notes.append(f"no session started: {exc}")
                else:
                    handler.info = info = replace(info, repo=str(rec.repo_path), session=rec.id)
            # What start-up made lives as long as the daemon: collected once and frozen, it is
            # left out of every later collection (a full one then walks only what came after,
            # not the ~150,000 objects of the libraries and the stack: milliseconds, not 50 ms
            # with the event loop stopped).
            gc.collect()
            gc.freeze()
            if ready is not None:
                ready(info, notes, None if stack.dashboard is None else stack.dashboard.login_url())
            await stopping.wait()
            await stack.scribe.aclose(EndReason.SHUTDOWN)
