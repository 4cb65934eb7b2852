"""The composition root: :func:`open_stack` wires the real adapters to the engine, once.

The daemon, the memory commands, the tests and the benches all build the stack here; what they need
to vary is a field of :class:`~engine.app.AppConfig` (database URL, ports, feed and dashboard on or
off, summary interval, grace) or a keyword of :func:`open_stack` (a summarizer, context sources,
capture settings, the git environment), never a second wiring.

The order of opening is the order of closing backwards: engine, database, memory store and generation
cache, session registry, summary pipeline, context provider, scribe, health monitor, feed server,
dashboard. At the end of the block the scribe stops every live session, the pipeline is given time to
store the final summaries, then the servers, the database and the engine close.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, final

import trio

import adapters

from .._context._provider import ContextProvider
from .._context._spec import SourceSpec
from .._core._alerts import AlertBook
from .._core._config import EngineConfig
from .._core._construction import NoPublicConstructor
from .._core._engine import Engine, open_engine
from .._core._errors import InvalidArgumentError, ScribeError
from .._core._health import HealthCheck, HealthChecks, run_health_monitor
from .._core._metric_history import MetricHistory
from .._core._monitoring_switch import MonitoringSwitch
from .._core._privacy import Privacy
from .._memory._generation_cache import GenerationCache
from .._memory._sources import run_memory_sweeper
from .._ports._git import Git
from .._ports._memory_store import Embedder, MemorySource
from .._ports._summarizer import Summarizer
from .._scribe._open_scribe import open_scribe
from .._scribe._rules import EndRules
from .._scribe._scribe import Scribe
from .._scribe._scribe_config import ScribeConfig
from .._scribe._summary_pipeline import SummaryPipeline
from ._cluster_settings import open_session_stores
from ._config import AppConfig
from ._embedder_settings import configured_embedder, min_similarity
from ._home import prepare_home, private_file
from ._monitor_settings import db_gate_adaptation
from ._monitoring import database_probe, start_monitoring
from ._summarizer_settings import configured_summarizer
from ._transcript_import import TranscriptImporter, open_transcript_importer

__all__ = ["Stack", "open_stack"]

SECRET_NAME: Final = "feed.secret"
#: Where entries carried across a database outage are written ahead (under the home).
JOURNAL_DIR: Final = "journal"
#: How long a read-only feed token the stack makes stays valid.
TOKEN_TTL: Final = 30 * 24 * 3600.0
#: The longest the stack waits for final summaries after the scribe stopped (plus one call's
#: ``summarizer_timeout`` when a language model writes them).
DRAIN_TIMEOUT: Final = 10.0


def feed_secret(home: Path) -> str:
    """The feed's signing secret kept in ``home`` (made, mode 0600, the first time)."""
    path = home / SECRET_NAME
    try:
        secret = path.read_text().strip()
        if len(secret) >= 32:
            return secret
    except FileNotFoundError:
        pass
    prepare_home(home)
    secret = secrets.token_hex(32)
    fd = private_file(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret


@final
@dataclass(eq=False)
class Stack(metaclass=NoPublicConstructor):
    """The wired application; get one from :func:`open_stack`.

    Attributes:
        config: the configuration it was built from.
        engine: the engine.
        db: the database.
        embedder: the configured embedder (the memory store's).
        backfill: embeds the memory store's backlog (a running service only with the scribe).
        memory: the memory store (messages, facts, decisions, preferences).
        memory_sources: the standard rehydration sources over ``db`` and ``memory``.
        generation_cache: the generation cache stored in ``db``.
        privacy: what every part scrubs before it stores, publishes or logs (``redact_*``).
        feed: the live feed server (None: ``config.feed`` is off).
        dashboard: the dashboard (None: off).
        token: a read-only feed token (None: no feed).
        health_checks: the parts' own health checks (``database``, ``capture``) for ``/health``.
        history: the metric history (None: ``config.monitoring`` off, or no scribe).
        alerts: the alerts' states (None: as ``history``); the ``alerts`` check of ``/health``.
        monitoring: switches the history, the histograms and the alerts at run time (None: as
            ``history``).
        watchers: the scribe's file watchers, counted (for the watcher alerts).
    """

    config: AppConfig
    engine: Engine
    db: adapters.Database
    embedder: Embedder
    backfill: adapters.EmbeddingBackfill
    memory: adapters.PostgresMemoryStore
    memory_sources: list[MemorySource]
    generation_cache: GenerationCache
    privacy: Privacy
    feed: adapters.FeedServer | None = None
    dashboard: adapters.Dashboard | None = None
    token: str | None = None
    health_checks: HealthChecks | None = None
    history: MetricHistory | None = None
    alerts: AlertBook | None = None
    monitoring: MonitoringSwitch | None = None
    watchers: adapters.WatcherTracker = dataclasses.field(default_factory=adapters.WatcherTracker)
    _registry: adapters.SessionRegistry | None = None
    _store: adapters.PostgresWorklogStore | None = None
    _pipeline: SummaryPipeline | None = None
    _context: ContextProvider | None = None
    _scribe: Scribe | None = None
    _transcripts: TranscriptImporter | None = None

    def _part(self, value: Any, name: str) -> Any:
        if value is None:
            raise InvalidArgumentError(f"this stack was opened without the scribe (no {name})")
        return value

    @property
    def registry(self) -> adapters.SessionRegistry:
        """The session registry (only with the scribe)."""
        registry: adapters.SessionRegistry = self._part(self._registry, "registry")
        return registry

    @property
    def store(self) -> adapters.PostgresWorklogStore:
        """The worklog store (only with the scribe)."""
        store: adapters.PostgresWorklogStore = self._part(self._store, "worklog store")
        return store

    @property
    def pipeline(self) -> SummaryPipeline:
        """The summary pipeline (only with the scribe)."""
        pipeline: SummaryPipeline = self._part(self._pipeline, "summary pipeline")
        return pipeline

    @property
    def context(self) -> ContextProvider:
        """The context provider (only with the scribe)."""
        context: ContextProvider = self._part(self._context, "context provider")
        return context

    @property
    def scribe(self) -> Scribe:
        """The scribe (only with the scribe)."""
        scribe: Scribe = self._part(self._scribe, "scribe")
        return scribe

    @property
    def transcripts(self) -> TranscriptImporter:
        """The transcript importer, its worker running (only with the scribe)."""
        importer: TranscriptImporter = self._part(self._transcripts, "transcript importer")
        return importer


def _scribe_config(config: AppConfig, privacy: Privacy) -> ScribeConfig:
    return ScribeConfig(
        privacy=privacy,
        end_rules=EndRules(
            idle_timeout=config.idle_timeout,
            on_branch_switch=config.end_on_branch_switch,
            on_push=config.end_on_push,
        ),
        mirror=config.mirror,
    )


@contextlib.asynccontextmanager
async def open_stack(
    config: AppConfig,
    *,
    scribe: bool = True,
    scribe_config: ScribeConfig | None = None,
    summarizer: Summarizer | None = None,
    context_sources: Mapping[str, SourceSpec] | None = None,
    git_env: Mapping[str, str] | None = None,
    privacy: Privacy | None = None,
) -> AsyncIterator[Stack]:
    """The application, wired, for the duration of the block.

    Args:
        config: the configuration.
        scribe: also open the session registry, the worklog store, the summary pipeline, the
            context provider, the scribe and the health monitor (False: the database, the memory
            store and the generation cache only, as the memory commands need).
        scribe_config: capture settings (None: from ``config``'s idle timeout, end rules,
            mirror and privacy; given, its privacy is replaced by the stack's).
        summarizer: what makes summaries (None: the one ``config.summarizer`` names).
        context_sources: the context provider's sources (None: the default ones).
        git_env: extra environment for every git command (an identity, for example).
        privacy: the stack's :attr:`Stack.privacy` (None: made from ``config``; the daemon passes
            the one its log already uses).

    Raises:
        DatabaseError: the database cannot be reached or started.
        OSError: a port is taken.

    Cancellation: everything opened so far is closed on the way out (shielded and bounded where it
    must be): live sessions get their stop entry, then the servers, the database and the engine
    close.
    """
    if config.database_url is None or config.home.exists():
        # The embedded server keeps its data in the home: made (or tightened) owner-only first.
        # With a database URL and no feed the home is not needed, so not made.
        prepare_home(config.home)
    engine_config = EngineConfig(
        home=config.home,
        database_url=config.database_url,
        gates={"db": config.pool_size, "summarizer": 1},
        adaptive_gates=db_gate_adaptation(config, config.pool_size),
        shutdown_grace=config.shutdown_grace,
    )
    async with contextlib.AsyncExitStack() as stack:
        eng = await stack.enter_async_context(open_engine(engine_config))
        db = await stack.enter_async_context(
            adapters.open_database(
                config.database_url,
                home=config.home,
                pool_size=config.pool_size,
                gate=eng.gate("db"),
            )
        )
        embedder = configured_embedder(config)
        memory = await adapters.create_memory_store(  # indexes: built by the background embedder
            db, embedder=embedder, min_vector_similarity=min_similarity(config), build_indexes=False
        )
        out = Stack._create(
            config=config,
            engine=eng,
            db=db,
            embedder=embedder,
            backfill=adapters.EmbeddingBackfill(memory, batch_size=config.embedder_batch_size),
            memory=memory,
            memory_sources=adapters.default_memory_sources(db, memory),
            generation_cache=adapters.create_generation_cache(db),
            privacy=config.privacy() if privacy is None else privacy,
        )
        if scribe:
            await _open_scribe(
                out,
                stack,
                (
                    _scribe_config(config, out.privacy)
                    if scribe_config is None
                    else dataclasses.replace(scribe_config, privacy=out.privacy)
                ),
                summarizer,
                context_sources,
                git_env,
            )
            out._transcripts = await stack.enter_async_context(
                open_transcript_importer(
                    memory, repo_of=functools.partial(_repo_of, out.scribe), privacy=out.privacy
                )
            )
        probe = database_probe(out, stack) if scribe else None

        def checks() -> dict[str, HealthCheck]:
            found: dict[str, HealthCheck] = {}
            if probe is not None:
                found["database"] = probe.health()
            if out._scribe is not None:
                found["capture"] = out._scribe.capture_health()
            if out.alerts is not None:
                found["alerts"] = out.alerts.health()
            return found

        out.health_checks = checks
        if probe is not None:
            eng.start_service(probe.run, name="database probe")
            if db.embedded is not None:
                # The daemon's own server: started again whenever its postmaster dies.
                supervise = functools.partial(
                    adapters.supervise_embedded_server,
                    on_restart=lambda n: eng.publish_nowait("database.restarted", {"restarts": n}),
                )
                eng.start_service(supervise, db.embedded, name="embedded postgres")
            sweep = functools.partial(run_memory_sweeper, retention=config.memory_retention())
            eng.start_service(sweep, memory, config.memory_sweep_interval, name="memory sweeper")
            monitor = functools.partial(run_health_monitor, checks=checks)
            eng.start_service(monitor, eng, config.health_interval, name="health")
            eng.start_service(out.backfill.run, name="background embedding")
        if config.feed:
            secret = feed_secret(config.home)
            out.token = adapters.make_token(
                secret, adapters.FeedScopes.read_all(), TOKEN_TTL, subject="scribe"
            )
            out.feed = await stack.enter_async_context(
                adapters.open_feed_server(
                    eng,
                    secret=secret,
                    host=config.host,
                    port=config.feed_port,
                    config=adapters.FeedServerConfig(allowed_hosts=config.allowed_hosts),
                )
            )
            if out._store is not None:
                out.feed.serve_worklog(out._store)
            if config.dashboard:
                out.dashboard = await stack.enter_async_context(
                    adapters.open_dashboard(
                        eng,
                        feed_url=out.feed.url,
                        secret=secret,
                        host=config.host,
                        port=config.dashboard_port,
                        feed=out.feed,
                        allowed_hosts=config.allowed_hosts,
                        health_checks=checks,
                        collectors=[adapters.EmbeddingCollector(out.backfill.statistics)],
                    )
                )
        if scribe:
            start_monitoring(out)
        yield out


async def _repo_of(scribe: Scribe, session_id: str) -> str | None:
    """The work tree a Scribe session watches (None: none, or no such session)."""
    try:
        record = await scribe.resolve(session_id)
    except ScribeError:
        return None
    return None if record.repo_path is None else str(record.repo_path)


async def _open_scribe(
    out: Stack,
    stack: contextlib.AsyncExitStack,
    scribe_config: ScribeConfig,
    summarizer: Summarizer | None,
    context_sources: Mapping[str, SourceSpec] | None,
    git_env: Mapping[str, str] | None,
) -> None:
    eng, db = out.engine, out.db
    registry, store = await open_session_stores(stack, db, out.config)
    context = ContextProvider(eng, sources=context_sources)
    pipeline = SummaryPipeline(
        eng,
        store,
        summarizer or configured_summarizer(out.config, out.generation_cache, out.privacy),
        min_interval=out.config.summary_interval,
        on_summary=lambda s: context.note_summary(s.session_id, s.as_dict()),
        privacy=out.privacy,
    )
    services = await stack.enter_async_context(trio.open_nursery())
    services.start_soon(pipeline.run)

    async def drain_summaries() -> None:
        # After the scribe has stopped every session: let their final summaries land.
        model = out.config.summarizer_timeout if out.config.summarizer != "heuristic" else 0
        with trio.move_on_after(DRAIN_TIMEOUT + model):
            await pipeline.wait_idle()
        services.cancel_scope.cancel()

    stack.push_async_callback(drain_summaries)

    async def open_repo(path: Path) -> Git:
        return await adapters.open_repository(path, gate=eng.gate("git"), env=git_env)

    out._scribe = await stack.enter_async_context(
        open_scribe(
            eng,
            registry=registry,
            store=store,
            open_repo=open_repo,
            open_fs=lambda root: adapters.ScopedFileSystem(root, gate=eng.gate("fs")),
            open_watcher=out.watchers.open,
            config=scribe_config,
            pipeline=pipeline,
            context=context,
            journal=adapters.FileJournal(out.config.home / JOURNAL_DIR),
        )
    )
    out._registry, out._store, out._pipeline, out._context = registry, store, pipeline, context
