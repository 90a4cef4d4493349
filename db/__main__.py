"""`python -m db migrate` applies pending migrations; `python -m db status` lists them.

Reads DATABASE_URL through the settings tree; unset means the local server.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg

from db.errors import DatabaseUnavailable
from db.migrate import MigrationError, applied_migrations, load_migrations, migrate
from settings import settings_or_exit

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
USAGE = "usage: python -m db {migrate|status}"


async def run_migrate(dsn: str) -> None:
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
    dsn = settings_or_exit().stores.database_url or DEFAULT_DSN
    try:
        asyncio.run(commands[args[0]](dsn))
    except (MigrationError, DatabaseUnavailable, OSError, asyncpg.PostgresError) as exc:
        print(f"db {args[0]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
