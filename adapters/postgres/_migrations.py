"""Versioned SQL migrations, applied at start under an advisory lock.

Each component ships its migrations as files ``adapters/postgres/migrations/NNNN_name.sql`` in one directory, in its
own number range: 0001-0099 the database core (registry, worklog, summaries), 0100-0199 memory,
0200-0299 the scribe, 0300-0399 monitoring. All pending migrations run in ONE transaction that first takes a transaction-level
advisory lock, so two engines starting at once never race: the second waits, then finds nothing to do. A
failing migration rolls back everything of that run. Migration files therefore must not use statements that
cannot run in a transaction block (``CREATE INDEX CONCURRENTLY``, ``VACUUM``).

Migrations are applied in version order; one a database lacks is applied even when higher versions are
already there (components own separate ranges and grow independently). A database holding a version the
code does not know was migrated by newer code: :class:`SchemaTooNewError`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg
import psycopg.errors

from ._errors import MigrationError, SchemaTooNewError

__all__ = [
    "MIGRATIONS_DIR",
    "MIGRATION_LOCK_KEY",
    "Migration",
    "apply_migrations",
    "discover_migrations",
]

#: Where every component puts its ``NNNN_name.sql`` files.
MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"

#: The advisory lock key that serialises migration runs (any engine, any process).
MIGRATION_LOCK_KEY: Final = 0x5C21BE_0000_0001

_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9][a-z0-9_]*)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file.

    Attributes:
        version: the number in the file name (``0003_x.sql`` -> 3).
        name: the rest of the file name without ``.sql``.
        sql: the file's text.
        checksum: sha256 of the text, recorded when applied.
    """

    version: int
    name: str
    sql: str
    checksum: str


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> tuple[Migration, ...]:
    """Read every migration in ``directory``, ascending by version.

    Files not ending in ``.sql`` are ignored.

    Raises:
        MigrationError: a ``.sql`` file is not named ``NNNN_name.sql``, or two files share a version.
    """
    found: dict[int, Migration] = {}
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"migration file {path.name!r} is not named NNNN_name.sql (lower-case name)"
            )
        version = int(match["version"])
        if version == 0:
            raise MigrationError(f"migration file {path.name!r}: version 0000 is reserved")
        if version in found:
            raise MigrationError(
                f"migrations {found[version].name!r} and {match['name']!r} share version {version:04d}"
            )
        text = path.read_text(encoding="utf-8")
        checksum = hashlib.sha256(text.encode()).hexdigest()
        found[version] = Migration(version, match["name"], text, checksum)
    return tuple(found[v] for v in sorted(found))


_CREATE_VERSION_TABLE: Final = """
CREATE TABLE IF NOT EXISTS schema_version (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def apply_migrations(
    conn: psycopg.Connection[Any], migrations: tuple[Migration, ...]
) -> list[Migration]:
    """Apply the pending ``migrations`` on ``conn``, which must be inside a transaction.

    Takes the migration advisory lock for the rest of the transaction, so the caller's commit both
    publishes the migrations and lets the next engine in.

    Returns:
        The migrations applied by this call (empty when the schema was up to date).

    Raises:
        SchemaTooNewError: the database holds versions ``migrations`` does not contain.
        MigrationError: a migration failed (the driver's error is the cause); the caller's transaction
            rolls back everything.
    """
    conn.execute("SET LOCAL statement_timeout = 0")
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
    conn.execute(_CREATE_VERSION_TABLE)
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_version").fetchall()}
    known = {m.version for m in migrations}
    unknown = tuple(sorted(applied - known))
    if unknown:
        newest = max(known, default=0)
        raise SchemaTooNewError(
            "the database schema is newer than this code: it holds migration version(s) "
            f"{', '.join(f'{v:04d}' for v in unknown)} that this code does not know "
            f"(it knows up to {newest:04d}); upgrade the code or use another database",
            unknown_versions=unknown,
        )
    done: list[Migration] = []
    for migration in migrations:
        if migration.version in applied:
            continue
        try:
            conn.execute(migration.sql.encode())
        except psycopg.errors.QueryCanceled:
            raise  # a cancellation stays one (trio.Cancelled for the caller)
        except psycopg.Error as exc:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name}.sql failed: "
                f"{str(exc).strip() or type(exc).__name__}",
                sqlstate=exc.sqlstate,
            ) from exc
        conn.execute(
            "INSERT INTO schema_version (version, name, checksum) VALUES (%s, %s, %s)",
            (migration.version, migration.name, migration.checksum),
        )
        done.append(migration)
    return done
