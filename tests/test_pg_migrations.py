"""Versioned migrations: the lock that lets engines start together, too-new schemas, atomic failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import psycopg.conninfo
import psycopg.sql
import pytest
import trio

import adapters
from adapters.postgres._migrations import apply_migrations


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


async def _versions(db: adapters.Database) -> list[int]:
    rows = await db.fetch("SELECT version FROM schema_version ORDER BY version")
    return [row["version"] for row in rows]


async def test_shipped_migrations_apply_and_are_idempotent(fresh_pg_url: str) -> None:
    known = [m.version for m in adapters.discover_migrations()]
    assert known[:2] == [1, 2]
    async with adapters.open_database(fresh_pg_url, pool_size=1) as db:
        assert await _versions(db) == known
        extensions = {r["extname"] for r in await db.fetch("SELECT extname FROM pg_extension")}
        assert {"pg_trgm", "vector"} <= extensions  # the embedded server ships both
        for table in ("sessions", "engine_owners", "worklog_entries", "summaries"):
            assert await db.fetchval("SELECT to_regclass(%s) IS NOT NULL", (table,))
    async with adapters.open_database(fresh_pg_url, pool_size=1) as db:
        assert await _versions(db) == known


async def test_two_engines_migrating_at_once(fresh_pg_url: str, tmp_path: Path) -> None:
    # A slow first migration makes sure the second engine arrives while the first holds the lock;
    # without the lock both would create the same tables and one would fail.
    migrations = _write(
        tmp_path / "m",
        {
            "0001_slow.sql": "CREATE TABLE slow (id int); SELECT pg_sleep(0.3);",
            "0002_more.sql": "CREATE TABLE more (id int); INSERT INTO more VALUES (1);",
        },
    )
    opened: list[int] = []

    async def engine_start() -> None:
        async with adapters.open_database(
            fresh_pg_url, pool_size=1, migrations_dir=migrations
        ) as db:
            opened.append(await db.fetchval("SELECT count(*) FROM more"))

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(engine_start)
    assert opened == [1, 1, 1]
    async with adapters.open_database(fresh_pg_url, pool_size=1, migrations_dir=migrations) as db:
        assert await _versions(db) == [1, 2]


async def test_newer_schema_is_a_clear_error(fresh_pg_url: str, tmp_path: Path) -> None:
    migrations = _write(tmp_path / "m", {"0001_a.sql": "CREATE TABLE a (id int);"})
    async with adapters.open_database(fresh_pg_url, pool_size=1, migrations_dir=migrations) as db:
        await db.execute(
            "INSERT INTO schema_version (version, name, checksum) VALUES (9999, 'future', 'x')"
        )
    with pytest.raises(adapters.SchemaTooNewError) as info:
        async with adapters.open_database(fresh_pg_url, pool_size=1, migrations_dir=migrations):
            pass
    assert info.value.unknown_versions == (9999,)
    assert "9999" in str(info.value) and "newer" in str(info.value)
    assert isinstance(info.value, adapters.MigrationError)


async def test_failed_migration_applies_nothing(fresh_pg_url: str, tmp_path: Path) -> None:
    migrations = _write(
        tmp_path / "m",
        {"0001_ok.sql": "CREATE TABLE ok_table (id int);", "0002_bad.sql": "CREATE TABLE oops (;"},
    )
    with pytest.raises(adapters.MigrationError) as info:
        async with adapters.open_database(fresh_pg_url, pool_size=1, migrations_dir=migrations):
            pass
    assert "0002_bad.sql" in str(info.value)
    assert isinstance(info.value.__cause__, psycopg.errors.SyntaxError)
    async with adapters.open_database(fresh_pg_url, pool_size=1, migrate=False) as db:
        assert await db.fetchval("SELECT to_regclass('ok_table')") is None
        assert await db.fetchval("SELECT to_regclass('schema_version')") is None


async def test_a_missing_lower_version_is_applied_later(fresh_pg_url: str, tmp_path: Path) -> None:
    directory = _write(
        tmp_path / "m",
        {"0001_a.sql": "CREATE TABLE a (id int);", "0200_c.sql": "CREATE TABLE c (id int);"},
    )
    async with adapters.open_database(fresh_pg_url, pool_size=1, migrations_dir=directory) as db:
        assert await _versions(db) == [1, 200]
    # Another component's range gains a migration below the newest applied one.
    _write(directory, {"0100_b.sql": "CREATE TABLE b (id int);"})
    async with adapters.open_database(fresh_pg_url, pool_size=1, migrations_dir=directory) as db:
        assert await _versions(db) == [1, 100, 200]


def test_malformed_migration_files_are_rejected(tmp_path: Path) -> None:
    bad_name = _write(tmp_path / "a", {"1_x.sql": ""})
    with pytest.raises(adapters.MigrationError, match="NNNN_name"):
        adapters.discover_migrations(bad_name)
    duplicate = _write(tmp_path / "b", {"0001_x.sql": "", "0001_y.sql": ""})
    with pytest.raises(adapters.MigrationError, match="share version 0001"):
        adapters.discover_migrations(duplicate)
    with pytest.raises(adapters.MigrationError, match="does not exist"):
        adapters.discover_migrations(tmp_path / "missing")
    ignored = _write(tmp_path / "c", {"README.md": "x", "0003_z.sql": "SELECT 1;"})
    assert [m.version for m in adapters.discover_migrations(ignored)] == [3]


async def test_extensions_degrade_when_they_cannot_be_created(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    # A role that may create tables but not extensions: the extension migration must still apply.
    directory = tmp_path / "m"
    directory.mkdir()
    shutil.copy(adapters.MIGRATIONS_DIR / "0001_extensions.sql", directory)
    role = "limited_" + fresh_pg_url.rsplit("_", 1)[-1][:8]
    with psycopg.connect(fresh_pg_url, autocommit=True) as conn:
        ident = psycopg.sql.Identifier(role)
        conn.execute(psycopg.sql.SQL("CREATE ROLE {} LOGIN").format(ident))
        conn.execute(psycopg.sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(ident))
    url = psycopg.conninfo.make_conninfo(fresh_pg_url, user=role)
    try:
        async with adapters.open_database(url, pool_size=1, migrations_dir=directory) as db:
            assert await _versions(db) == [1]
            extensions = {r["extname"] for r in await db.fetch("SELECT extname FROM pg_extension")}
            assert not extensions & {"pg_trgm", "vector"}
    finally:
        with psycopg.connect(fresh_pg_url, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP OWNED BY {}").format(psycopg.sql.Identifier(role)))
            conn.execute(psycopg.sql.SQL("DROP ROLE {}").format(psycopg.sql.Identifier(role)))


def test_memory_sessions_of_registered_sessions_get_their_work_tree(
    fresh_pg_url: str, tmp_path: Path
) -> None:
    """Migration 0101 gives the memory sessions written before it the repository of their session."""
    shipped = adapters.discover_migrations()
    before = tmp_path / "before"
    for m in shipped:
        if m.version <= 100:
            _write(before, {f"{m.version:04d}_{m.name}.sql": m.sql})
    with psycopg.connect(fresh_pg_url) as conn:
        apply_migrations(conn, adapters.discover_migrations(before))
        conn.execute(
            "INSERT INTO sessions (id, name, kind, state, priority, repo_path) VALUES"
            " ('s-tree', 'a', 'implementation', 'completed', 1, '/work/shop'),"
            " ('s-none', 'b', 'implementation', 'completed', 1, NULL)"
        )
        conn.execute(
            "INSERT INTO memory_sessions (session_id) VALUES ('s-tree'), ('s-none'), ('loose')"
        )
    with psycopg.connect(fresh_pg_url) as conn:
        assert [m.version for m in apply_migrations(conn, shipped)] == [
            m.version for m in shipped if m.version > 100
        ]
        rows = conn.execute("SELECT session_id, repo FROM memory_sessions ORDER BY 1").fetchall()
    assert rows == [("loose", None), ("s-none", None), ("s-tree", "/work/shop")]
