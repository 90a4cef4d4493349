"""`python -m db migrate` applies pending migrations; `python -m db status` lists them.

Reads DATABASE_URL through the settings tree; unset means the local server.
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlsplit

import asyncpg

from db.errors import DatabaseUnavailable
from db.migrate import MigrationError, applied_migrations, load_migrations, migrate
from embedded import ensure_database, with_database
from settings import settings_or_exit

USAGE = "usage: python -m db {migrate|status}"


async def create_database_if_missing(dsn: str) -> None:
    """A first `migrate` on a server that lacks the project's database creates it."""
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except asyncpg.InvalidCatalogNameError:
        database = urlsplit(dsn).path.lstrip("/")
        await ensure_database(with_database(dsn, "postgres"), database)
        print(f"created database {database}")
    else:
        await conn.close()


async def run_migrate(dsn: str) -> None:
    await create_database_if_missing(dsn)
    names = await migrate(dsn)
    for name in names:
        print(f"applied {name}")
    print(f"{len(names)} migration(s) applied; schema is current")


async def run_status(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        applied = await applied_migrations(conn)
    finally:
        await conn.close()
    for migration in load_migrations():
        record = applied.get(migration.version)
        state = f"applied {record.applied_at.isoformat()}" if record else "pending"
        edited = record is not None and record.checksum != migration.checksum
        print(f"{migration.name}: {state}{' (EDITED since applied)' if edited else ''}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    commands = {"migrate": run_migrate, "status": run_status}
    if len(args) != 1 or args[0] not in commands:
        print(USAGE, file=sys.stderr)
        return 2
    dsn = settings_or_exit().stores.database_dsn
    try:
        asyncio.run(commands[args[0]](dsn))
    except (MigrationError, DatabaseUnavailable, OSError, asyncpg.PostgresError) as exc:
        print(f"db {args[0]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
