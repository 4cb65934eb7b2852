"""The embedded default server: data under the engine home, reuse, sharing, clear failures."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
import trio
from pg_support import TEST_SETTINGS, reap_stale_servers, start_test_server

import adapters
import engine
from adapters.postgres._server_memory import shared_buffers_setting
from engine.app import load_config, open_stack


def _marker_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM marker").fetchone()
        assert row is not None
        return int(row[0])


async def test_data_dir_is_reused_and_the_server_stopped(pg_tmp_path: Path) -> None:
    home = pg_tmp_path / "home"
    async with adapters.open_embedded_server(home, settings=TEST_SETTINGS) as server:
        assert server.pgdata == home / "pgdata"
        assert server.is_running()
        with psycopg.connect(server.url("scribe"), autocommit=True) as conn:
            conn.execute("CREATE TABLE marker (id int)")
            conn.execute("INSERT INTO marker VALUES (1)")
        version_file = server.pgdata / "PG_VERSION"
        first_init = version_file.stat().st_mtime_ns
    assert not server.is_running()
    async with adapters.open_embedded_server(home, settings=TEST_SETTINGS) as again:
        # initdb did not run again: same cluster, same data.
        assert version_file.stat().st_mtime_ns == first_init
        assert await trio.to_thread.run_sync(_marker_count, again.url("scribe")) == 1
    assert not again.is_running()


async def test_server_is_shared_and_the_last_holder_stops_it(pg_tmp_path: Path) -> None:
    home = pg_tmp_path / "home"
    async with adapters.open_embedded_server(home, settings=TEST_SETTINGS) as first:
        async with adapters.open_embedded_server(home, settings=TEST_SETTINGS) as second:
            assert second.url() == first.url()
        assert first.is_running()  # the other holder is still using it
        with psycopg.connect(first.url(), connect_timeout=5) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert not first.is_running()


async def test_the_supervisor_starts_no_server_whose_block_has_ended(pg_tmp_path: Path) -> None:
    # A daemon stops its embedded server as its database closes, before its services (the
    # supervisor among them) end: the supervisor must not take that stop for a crash.
    restarts: list[int] = []
    async with trio.open_nursery() as nursery:
        async with adapters.open_embedded_server(
            pg_tmp_path / "home", settings=TEST_SETTINGS
        ) as server:
            nursery.start_soon(
                lambda: adapters.supervise_embedded_server(
                    server, interval=0.05, on_restart=restarts.append
                )
            )
            await trio.sleep(0.2)
            assert server.postmaster_alive()
        try:
            await trio.sleep(1.0)  # twenty checks of a stopped server
            assert not server.postmaster_alive() and restarts == []
        finally:
            nursery.cancel_scope.cancel()
            if server.postmaster_alive():  # started again: leave no server behind
                await trio.to_thread.run_sync(server.stop, "fast")


async def test_open_database_without_url_uses_the_embedded_server(pg_tmp_path: Path) -> None:
    home = pg_tmp_path / "home"
    async with adapters.open_database(home=home, pool_size=1) as db:
        assert str(home / "pgdata") in db.url
        assert await db.fetchval("SELECT current_database()") == "scribe"
        assert await db.fetchval("SELECT count(*) FROM sessions") == 0
        # The buffer cache is sized to the machine, not PostgreSQL's 128 MB default.
        buffers = await db.fetchval(
            "SELECT setting::bigint * 8192 FROM pg_settings WHERE name = 'shared_buffers'"
        )
        assert buffers == int(shared_buffers_setting().removesuffix("MB")) * 1024 * 1024
    assert not adapters.EmbeddedServer(home / "pgdata").is_running()
    with pytest.raises(engine.InvalidArgumentError, match="no database URL and no home"):
        async with adapters.open_database(pool_size=1):
            pass


async def test_configured_url_wins_over_the_embedded_server(pg_url: str, pg_tmp_path: Path) -> None:
    # The URL reaches the database through the application's configuration, the one reader of
    # the environment.
    env = {
        "SCRIBE_DATABASE_URL": pg_url,
        "SCRIBE_HOME": str(pg_tmp_path / "home"),
        "SCRIBE_FEED": "off",
        "XDG_CONFIG_HOME": str(pg_tmp_path / "config"),
    }
    async with open_stack(load_config(environ=env), scribe=False) as stack:
        assert stack.db.url == pg_url
        assert await stack.db.fetchval("SELECT 1") == 1
    assert not (pg_tmp_path / "home").exists()


async def test_a_server_that_cannot_start_says_why(pg_tmp_path: Path) -> None:
    with pytest.raises(adapters.EmbeddedServerError) as info:
        async with adapters.open_embedded_server(
            pg_tmp_path / "home", settings={"shared_buffers": "not-a-size"}
        ):
            pass
    assert "shared_buffers" in info.value.log_tail
    assert "server log" in str(info.value)
    assert isinstance(info.value, adapters.DatabaseError)


async def test_a_foreign_data_dir_is_refused(pg_tmp_path: Path) -> None:
    pgdata = pg_tmp_path / "home" / "pgdata"
    pgdata.mkdir(parents=True)
    (pgdata / "something.txt").write_text("not a cluster")
    with pytest.raises(adapters.EmbeddedServerError, match="holds no PostgreSQL cluster"):
        async with adapters.open_embedded_server(pg_tmp_path / "home"):
            pass
    assert (pgdata / "something.txt").read_text() == "not a cluster"


def test_long_data_dir_paths_get_a_short_socket_dir(pg_tmp_path: Path) -> None:
    deep = pg_tmp_path / ("d" * 60) / ("e" * 60) / "pgdata"
    server = adapters.EmbeddedServer(deep)
    assert server.socket_dir != deep
    assert len(str(server.socket_dir / ".s.PGSQL.5432")) < 100
    assert server.url("x").endswith(f"host={server.socket_dir}")


def test_servers_of_killed_test_runs_are_reaped() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    directory = Path(tempfile.mkdtemp(prefix="scribe-pg-test-"))
    (directory / "owner.pid").write_text(str(gone.pid))
    server = start_test_server(directory)
    assert server.is_running()
    reap_stale_servers()
    assert not directory.exists()
    assert not server.is_running()


def test_the_buffer_cache_is_a_quarter_of_memory_within_bounds() -> None:
    gib = 1024**3
    assert shared_buffers_setting(24 * gib) == "6144MB"
    assert shared_buffers_setting(64 * gib) == "8192MB"
    assert shared_buffers_setting(4 * gib) == "1024MB"
    assert shared_buffers_setting(256 * 1024**2) == "128MB"
