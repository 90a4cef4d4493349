"""The migration runner: apply, no-op, refusals naming the file, concurrency, schema check."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

import embedded
from db.migrate import (
    BEHIND,
    MIGRATIONS_DIR,
    MigrationError,
    SchemaBehind,
    check_schema,
    load_migrations,
    migrate,
)
from db.repository import DatabaseUnavailable

ROOT = Path(__file__).resolve().parents[3]
ALL = [path.name for path in sorted(MIGRATIONS_DIR.glob("*.sql"))]


def copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


async def recorded(url: str) -> list[tuple[int, str, str]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
        )
    finally:
        await conn.close()
    return [(row["version"], row["name"], row["checksum"]) for row in rows]


async def test_all_migrations_apply_to_an_empty_database(empty_database: str) -> None:
    """Every file applies to an empty database and is recorded with its checksum."""
    assert await migrate(empty_database) == ALL
    expected = [(m.version, m.name, m.checksum) for m in load_migrations()]
    assert await recorded(empty_database) == expected
    await check_schema(empty_database)


async def test_applying_twice_is_a_noop(empty_database: str) -> None:
    """A second run applies nothing and changes no bookkeeping row."""
    await migrate(empty_database)
    before = await recorded(empty_database)
    assert await migrate(empty_database) == []
    assert await recorded(empty_database) == before


async def test_duplicate_version_is_refused_naming_both_files(
    empty_database: str, tmp_path: Path
) -> None:
    """Two files with one version are refused, naming both, before anything runs."""
    directory = copy_migrations(tmp_path)
    (directory / "0002_other.sql").write_text("CREATE TABLE public.never_made (id int);\n")
    with pytest.raises(
        MigrationError,
        match=r"0002_schema\.sql: duplicate version 2 \(also used by 0002_other\.sql\)",
    ):
        await migrate(empty_database, directory)
    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT to_regclass('public.schema_migrations')") is None
    finally:
        await conn.close()


async def test_edited_applied_file_is_refused_naming_it(
    empty_database: str, tmp_path: Path
) -> None:
    """Changing a file after it was applied stops the runner with that file's name."""
    directory = copy_migrations(tmp_path)
    await migrate(empty_database, directory)
    edited = directory / "0002_schema.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent comment\n")
    (directory / "0099_later.sql").write_text("CREATE TABLE public.never_made (id int);\n")
    with pytest.raises(MigrationError, match=r"0002_schema\.sql was edited"):
        await migrate(empty_database, directory)
    with pytest.raises(MigrationError, match=r"0002_schema\.sql"):
        await check_schema(empty_database, directory)
    assert 99 not in [version for version, _, _ in await recorded(empty_database)]


async def test_failing_file_rolls_back_alone(empty_database: str, tmp_path: Path) -> None:
    """A file that fails is rolled back and unrecorded; earlier files stay applied."""
    directory = copy_migrations(tmp_path)
    (directory / "0098_bad.sql").write_text(
        "CREATE TABLE public.half_made (id int);\nSELECT 1/0;\n"
    )
    with pytest.raises(MigrationError, match=r"0098_bad\.sql failed"):
        await migrate(empty_database, directory)
    assert [name for _, name, _ in await recorded(empty_database)] == ALL
    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT to_regclass('public.half_made')") is None
    finally:
        await conn.close()


async def test_two_concurrent_runners_apply_each_file_once(empty_database: str) -> None:
    """Two runners started together apply every file exactly once between them."""
    first, second = await asyncio.gather(migrate(empty_database), migrate(empty_database))
    assert sorted(first + second) == ALL
    assert [] in (first, second)
    assert len(await recorded(empty_database)) == len(ALL)


async def test_check_schema_reports_pending_files(empty_database: str, tmp_path: Path) -> None:
    """A database missing files raises SchemaBehind with the agreed line; current passes."""
    with pytest.raises(SchemaBehind) as behind:
        await check_schema(empty_database)
    assert str(behind.value) == "schema is behind: run migrations (python -m db migrate)"
    assert str(behind.value) == BEHIND
    assert behind.value.pending == ALL
    await migrate(empty_database)
    await check_schema(empty_database)
    directory = copy_migrations(tmp_path)
    (directory / "0100_next.sql").write_text("SELECT 1;\n")
    with pytest.raises(SchemaBehind):
        await check_schema(empty_database, directory)


async def test_check_schema_accepts_a_connection_and_a_pool(pg_pool: asyncpg.Pool) -> None:
    """The start-up check works on a pool and on a pooled connection of a current database."""
    await check_schema(pg_pool)
    async with pg_pool.acquire() as conn:
        await check_schema(conn)


async def test_unreachable_database_is_unavailable_not_behind() -> None:
    """A server that does not answer raises DatabaseUnavailable, not SchemaBehind."""
    url = f"postgresql://postgres@127.0.0.1:{embedded.free_port()}/postgres"
    with pytest.raises(DatabaseUnavailable):
        await check_schema(url)


async def test_cli_migrate_and_status(empty_database: str) -> None:
    """`python -m db migrate` applies from DATABASE_URL and `status` lists every file."""
    env = {**os.environ, "DATABASE_URL": empty_database}
    cwd = ROOT

    def run(command: str) -> subprocess.CompletedProcess[str]:
        args = [sys.executable, "-m", "db", command]
        return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)

    status = await asyncio.to_thread(run, "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.count(": pending") == len(ALL)
    applied = await asyncio.to_thread(run, "migrate")
    assert applied.returncode == 0, applied.stderr
    assert all(f"applied {name}" in applied.stdout for name in ALL)
    status = await asyncio.to_thread(run, "status")
    assert "pending" not in status.stdout


async def test_schema_ahead_of_the_files_is_current_but_not_migratable(
    empty_database: str, tmp_path: Path
) -> None:
    """An older process accepts a newer schema; the runner refuses a file it does not have."""
    directory = copy_migrations(tmp_path)
    (directory / "0200_newer.sql").write_text("SELECT 1;\n")
    await migrate(empty_database, directory)
    await check_schema(empty_database)
    with pytest.raises(
        MigrationError, match=r"0200_newer\.sql was applied but its file is missing"
    ):
        await migrate(empty_database)


async def test_compatibility_migration_leaves_existing_objects_alone(pg_pool: asyncpg.Pool) -> None:
    """Re-running the Supabase compatibility file where its objects exist changes nothing."""
    sql = (MIGRATIONS_DIR / "0001_supabase_compat.sql").read_text()
    uid = "SELECT pg_get_functiondef('auth.uid()'::regprocedure)"
    async with pg_pool.acquire() as conn:
        before = await conn.fetchval(uid)
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute(sql)
            assert await conn.fetchval(uid) == before
            roles = await conn.fetch(
                "SELECT rolname, rolbypassrls, rolcanlogin FROM pg_roles"
                " WHERE rolname IN ('anon', 'authenticated', 'service_role') ORDER BY rolname"
            )
        finally:
            await transaction.rollback()
    assert [tuple(role) for role in roles] == [
        ("anon", False, False),
        ("authenticated", False, False),
        ("service_role", True, False),
    ]
