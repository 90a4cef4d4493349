"""The migration runner: ordered SQL files in `db/migrations`, applied once each.

`schema_migrations(version, name, checksum, applied_at)` records what ran. One session-level
advisory lock serialises runners; each file runs in its own transaction together with its
bookkeeping row. A duplicate version or an applied file whose text changed is refused, naming
the file, before anything runs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from db.errors import CONNECTION_ERRORS, DatabaseUnavailable

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_KEY = 0x636F757273650001  # "course" + 1: one advisory lock for every runner
BEHIND = "schema is behind: run migrations (python -m db migrate)"
Conn = asyncpg.Connection | PoolConnectionProxy
Connectable = asyncpg.Connection | PoolConnectionProxy | asyncpg.Pool
_FILE = re.compile(r"^(\d+)_([A-Za-z0-9_\-]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS public.schema_migrations (
    version    bigint PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


class MigrationError(Exception):
    """The migration files or the recorded history are inconsistent; names the file."""


class SchemaBehind(Exception):
    """Migrations are pending; `str()` is the one line the processes print before exiting."""

    def __init__(self, pending: list[str] | None = None) -> None:
        super().__init__(BEHIND)
        self.pending = pending or []


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    checksum: str


@dataclass(frozen=True)
class Applied:
    version: int
    name: str
    checksum: str
    applied_at: datetime


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The files in version order; refuses stray names and duplicate versions."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise MigrationError(f"migration file {path.name}: name must be <version>_<name>.sql")
        migration = _read(path, int(match.group(1)))
        if migration.version in found:
            other = found[migration.version].name
            raise MigrationError(
                f"migration file {path.name}: duplicate version {migration.version} "
                f"(also used by {other})"
            )
        found[migration.version] = migration
    return [found[version] for version in sorted(found)]


def _read(path: Path, version: int) -> Migration:
    data = path.read_bytes()
    checksum = hashlib.sha256(data).hexdigest()
    return Migration(version, path.name, data.decode("utf-8"), checksum)


async def applied_migrations(conn: Conn) -> dict[int, Applied]:
    """What `schema_migrations` records, by version (empty when the table does not exist)."""
    exists = await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch(
        "SELECT version, name, checksum, applied_at FROM public.schema_migrations"
    )
    return {row["version"]: Applied(**dict(row)) for row in rows}


def verify(
    files: list[Migration], applied: dict[int, Applied], *, allow_newer: bool = False
) -> list[Migration]:
    """The pending files, after refusing edited applied ones and (unless `allow_newer`, as for
    a process older than the schema) applied versions that have no file here."""
    by_version = {migration.version: migration for migration in files}
    for version, record in sorted(applied.items()):
        migration = by_version.get(version)
        if migration is None and allow_newer:
            continue
        if migration is None:
            raise MigrationError(f"migration {record.name} was applied but its file is missing")
        if migration.checksum != record.checksum:
            raise MigrationError(
                f"migration file {migration.name} was edited after it was applied "
                "(checksum differs); add a new migration instead"
            )
    return [migration for migration in files if migration.version not in applied]


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending file under one advisory lock; return the names applied."""
    files = load_migrations(directory)
    conn = await _connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            return await _apply_pending(conn, files)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await conn.close()


async def _apply_pending(conn: asyncpg.Connection, files: list[Migration]) -> list[str]:
    await conn.execute(_CREATE_TABLE)
    pending = verify(files, await applied_migrations(conn))
    for migration in pending:
        await _apply(conn, migration)
    return _names(pending)


async def _apply(conn: asyncpg.Connection, migration: Migration) -> None:
    async with conn.transaction():
        try:
            await conn.execute(migration.sql)
        except asyncpg.PostgresError as exc:
            raise MigrationError(f"migration file {migration.name} failed: {exc}") from exc
        await conn.execute(
            "INSERT INTO public.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            migration.version,
            migration.name,
            migration.checksum,
        )


async def pending_migrations(
    dsn_or_conn: str | Connectable, directory: Path = MIGRATIONS_DIR
) -> list[str]:
    """Names of the files not yet applied; refuses edited applied files, tolerates newer ones."""
    files = load_migrations(directory)
    if isinstance(dsn_or_conn, asyncpg.Pool):
        async with dsn_or_conn.acquire() as proxy:
            applied = await applied_migrations(proxy)
    elif isinstance(dsn_or_conn, str):
        conn = await _connect(dsn_or_conn)
        try:
            applied = await applied_migrations(conn)
        finally:
            await conn.close()
    else:
        applied = await applied_migrations(dsn_or_conn)
    return _names(verify(files, applied, allow_newer=True))


async def check_schema(dsn_or_conn: str | Connectable, directory: Path = MIGRATIONS_DIR) -> None:
    """Raise `SchemaBehind` when files are pending; `DatabaseUnavailable` when unreachable."""
    try:
        pending = await pending_migrations(dsn_or_conn, directory)
    except CONNECTION_ERRORS as exc:
        raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
    if pending:
        raise SchemaBehind(pending)


def _names(migrations: list[Migration]) -> list[str]:
    return [migration.name for migration in migrations]


async def _connect(dsn: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(dsn, timeout=10)
    except CONNECTION_ERRORS as exc:
        raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
