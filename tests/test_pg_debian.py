"""Debian's PostgreSQL server (an older major version, no pgvector): vector search reports itself
unavailable and everything else holds.

The backend-agnostic database tests of the other modules run here once more, unchanged: they are imported
by name, and this module's ``pg_url`` / ``fresh_pg_url`` point at Debian's server instead of the embedded
one. Only the ones that exercise what differs between servers are repeated (SQL and migrations, the
driver, the stores' queries, the command line and the daemon through ``SCRIBE_DATABASE_URL``), not every
test that happens to use a database; tests that check what only the embedded server has (pgvector) stay
with it.
"""

from __future__ import annotations

import importlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import trio
from debian_pg_support import DebianServer, debian_server_directory, reap_stale_debian_servers
from memory_support import new_session_id, open_store
from pg_support import TEST_SETTINGS
from test_cli_sessions import Daemon, wait_for
from test_cli_sessions import daemon as daemon
from test_cli_sessions import repo as repo

import adapters
import engine

# The tests repeated on Debian's server, by module. (Their modules' fixtures come along where they
# need them; this module's ``pg_url`` and ``fresh_pg_url`` below take the place of the embedded ones.)
_REPEATED = {
    "test_cli": ("test_remember_and_recall_through_the_cli",),
    "test_memory_store": (
        "test_concurrent_appends_get_distinct_sequence_numbers",
        "test_concurrent_supersession_has_one_winner",
        "test_expired_rows_are_never_returned_even_before_the_sweep",
        "test_facts_upsert_by_session_type_and_key",
        "test_messages_are_numbered_in_order_and_hashed",
        "test_preferences_count_uses_and_keep_them_on_update",
        "test_retrieval_cache",
        "test_supersession_chains",
    ),
    "test_pg": (
        "test_cancel_inside_a_transaction_commits_nothing",
        "test_cancellations_at_random_moments_leave_the_pool_consistent",
        "test_cancelled_sleep_is_cancelled_on_the_server",
        "test_constraint_violations_and_bad_sql_are_typed",
        "test_queries_and_results",
        "test_run_sync_commits_or_rolls_back",
        "test_statement_timeout_is_a_typed_server_cancel",
    ),
    "test_pg_migrations": (
        "test_extensions_degrade_when_they_cannot_be_created",
        "test_failed_migration_applies_nothing",
        "test_two_engines_migrating_at_once",
    ),
    "test_registry": (
        "test_a_cleanly_closed_owner_leaves_its_live_sessions_to_others",
        "test_an_owner_whose_lease_expired_counts_as_gone",
        "test_concurrent_updates_exactly_one_wins_each_round",
        "test_purge_finished_sessions_older_than_n_days",
        "test_register_get_update_round_trip",
        "test_sessions_of_a_killed_engine_are_marked_orphaned",
        "test_state_changes_are_versioned_and_follow_the_lifecycle",
        "test_tags_touch_and_queries",
    ),
    "test_summary_pipeline": (
        "test_requests_never_block_and_none_is_lost",
        "test_summaries_fold_new_entries_and_finish",
    ),
}
for _module_name, _test_names in _REPEATED.items():
    _module = importlib.import_module(_module_name)
    for _name in _test_names:
        globals()[_name] = getattr(_module, _name)  # a renamed test fails here, loudly


@pytest.fixture
def pg_url(debian_pg_url: str) -> str:
    return debian_pg_url


@pytest.fixture
def fresh_pg_url(fresh_debian_pg_url: str) -> str:
    return fresh_debian_pg_url


def _extensions(url: str) -> tuple[set[str], set[str]]:
    """(installed, available) extension names of the database at ``url``."""
    with psycopg.connect(url) as conn:
        installed = {row[0] for row in conn.execute("SELECT extname FROM pg_extension")}
        available = {row[0] for row in conn.execute("SELECT name FROM pg_available_extensions")}
    return installed, available


async def test_it_is_debians_older_server_and_the_migrations_hold_without_pgvector(
    debian_pg_server: DebianServer, fresh_pg_url: str
) -> None:
    known = [m.version for m in adapters.discover_migrations()]
    for _ in range(2):  # the second start finds nothing left to do
        async with adapters.open_database(fresh_pg_url, pool_size=1) as db:
            version = int(await db.fetchval("SHOW server_version_num"))
            assert version // 10000 == debian_pg_server.major_version < 18
            rows = await db.fetch("SELECT version FROM schema_version ORDER BY version")
            assert [row["version"] for row in rows] == known
            for table in ("sessions", "engine_owners", "worklog_entries", "summaries"):
                assert await db.fetchval("SELECT to_regclass(%s) IS NOT NULL", (table,))
    installed, available = await trio.to_thread.run_sync(_extensions, fresh_pg_url)
    assert "vector" not in available and "vector" not in installed
    assert "pg_trgm" in installed


async def test_vector_search_reports_itself_unavailable_and_the_rest_works(
    fresh_pg_url: str,
) -> None:
    sid = new_session_id()
    async with open_store(fresh_pg_url, embedder=adapters.HashingEmbedder(64)) as (db, store):
        assert store.vector_status is engine.VectorStatus.UNAVAILABLE
        assert not await db.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'embedding'"
        )
        with pytest.raises(engine.VectorSearchUnavailableError, match="unavailable"):
            await store.vector_search_messages("trio nursery cancellation", session_id=sid)
        await store.add_messages(
            sid,
            [
                engine.NewMessage("user", "the trio nursery cancels its children on error"),
                engine.NewMessage("assistant", "a wholly unrelated remark about lunch"),
            ],
        )
        await store.add_decision(
            engine.NewDecision("Use trio nurseries", "structured cancellation", session_id=sid)
        )
        messages = await store.search_messages("nursery cancels", session_id=sid)
        assert messages.vector is engine.VectorStatus.UNAVAILABLE
        assert [hit.item.content for hit in messages.hits] == [
            "the trio nursery cancels its children on error"
        ]
        assert "fts" in messages.hits[0].ranks and "vec" not in messages.hits[0].ranks
        typo = await store.search_messages("cancells", session_id=sid)  # trigram similarity only
        assert [hit.item.content for hit in typo.hits] == [
            "the trio nursery cancels its children on error"
        ]
        assert "trgm" in typo.hits[0].ranks
        decisions = await store.search_decisions("nurseries", session_id=sid)
        assert decisions.vector is engine.VectorStatus.UNAVAILABLE
        assert [hit.item.title for hit in decisions.hits] == ["Use trio nurseries"]


@pytest.fixture
def own_debian_server() -> Iterator[DebianServer]:
    """A Debian cluster of the test's own, which it may stop and start."""
    with debian_server_directory() as directory:
        server = DebianServer(directory, settings=TEST_SETTINGS)
        server.start()
        try:
            yield server
        finally:
            server.stop("immediate")


async def test_server_killed_and_restarted(own_debian_server: DebianServer, tmp_path: Path) -> None:
    server = own_debian_server
    async with adapters.open_database(
        server.url(), pool_size=2, acquire_timeout=1.0, connect_timeout=1.0, migrate=False
    ) as db:
        await db.execute("CREATE TABLE kept (id bigint PRIMARY KEY)")
        await db.execute("INSERT INTO kept VALUES (1)")
        await trio.to_thread.run_sync(server.stop, "immediate")
        with pytest.raises(adapters.DatabaseUnavailableError):
            await db.execute("INSERT INTO kept VALUES (2)")
        assert db.statistics().unavailable
        await trio.to_thread.run_sync(server.start)
        with trio.fail_after(60):  # a guard against hanging, not a latency bound
            while True:
                try:
                    await db.execute("INSERT INTO kept VALUES (3)")
                    break
                except adapters.DatabaseUnavailableError:
                    await trio.sleep(0.05)
        assert await db.fetch("SELECT id FROM kept ORDER BY id") == [{"id": 1}, {"id": 3}]
        assert not db.statistics().unavailable


def test_the_daemon_runs_on_it_through_scribe_database_url(
    debian_pg_server: DebianServer, daemon: Daemon, repo: Path
) -> None:
    assert f"host={debian_pg_server.socket_dir}" in daemon.env["SCRIBE_DATABASE_URL"]
    assert "Scribe is running" in daemon.start()
    [session] = daemon.json("list")
    sid = session["id"]
    (repo / "app.py").write_text("a = 2\n")
    wait_for(lambda: any(e["kind"] == "files" for e in daemon.json("worklog", sid)["entries"]))
    r = daemon.run("append", sid, "Decision:", "any", "PostgreSQL")
    assert r.returncode == 0, r.stderr
    md = daemon.run("worklog", sid)
    assert "**Files** modified `app.py`" in md.stdout
    assert "**Note** Decision: any PostgreSQL" in md.stdout
    assert "Scribe stopped." in daemon.stop()


def test_clusters_of_killed_test_runs_are_reaped() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    directory = Path(tempfile.mkdtemp(prefix="scribe-debian-pg-test-"))
    (directory / "owner.pid").write_text(str(gone.pid))
    server = DebianServer(directory)
    server.start()
    assert server.is_running()
    reap_stale_debian_servers()
    assert not directory.exists()
    found = subprocess.run(["pgrep", "-f", str(directory)], capture_output=True, check=False)
    assert found.returncode == 1, found.stdout  # no process of that cluster is left
