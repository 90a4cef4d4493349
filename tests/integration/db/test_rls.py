"""Row-level security with Supabase-style roles and claims (SET ROLE + request.jwt.claims)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import pytest
from asyncpg.pool import PoolConnectionProxy

from db.repository import CourseRepository
from tests.factories import TITLE, insert_course, insert_user, new_id, run_start
from tests.integration.db.support import as_role

PROTECTED = {
    "generation_status": "'failed'",
    "generation_progress": "'{}'::jsonb",
    "workflow_id": "'wf'",
    "run_id": "'run'",
    "progress_seq": "99",
}
TABLES = ("courses", "user_profiles", "system_metrics", "generation_status_history")


@dataclass(frozen=True)
class TwoUsers:
    a: str
    b: str
    courses: dict[str, list[str]]  # by user id


@pytest.fixture
async def two_users(pg_pool: asyncpg.Pool, repo: CourseRepository) -> TwoUsers:
    """Users A and B with two courses each (A's first one claimed) and one metric."""
    a, b = await insert_user(pg_pool, "PREMIUM"), await insert_user(pg_pool, "FREE")
    courses = {
        user: [await insert_course(pg_pool, user_id=user) for _ in range(2)] for user in (a, b)
    }
    await repo.begin_generation(courses[a][0], "wf", new_id(), "STRUCTURE_ANALYSIS", run_start())
    await repo.begin_generation(courses[b][0], "wf", new_id(), "STRUCTURE_ANALYSIS", run_start())
    await repo.record_metric("job_rollback", "warn", user_id=a, course_id=courses[a][0])
    return TwoUsers(a, b, courses)


async def visible_courses(conn: PoolConnectionProxy) -> set[str]:
    return {str(record["id"]) for record in await conn.fetch("SELECT id FROM courses")}


async def test_user_sees_only_their_own_courses(pg_pool: asyncpg.Pool, two_users: TwoUsers) -> None:
    """User A reads exactly A's courses and B exactly B's."""
    for user in (two_users.a, two_users.b):
        async with as_role(pg_pool, "authenticated", user) as conn:
            assert await visible_courses(conn) == set(two_users.courses[user])


async def test_user_cannot_update_or_delete_another_users_course(
    pg_pool: asyncpg.Pool, two_users: TwoUsers
) -> None:
    """A's update or delete of B's course touches zero rows."""
    theirs = uuid.UUID(two_users.courses[two_users.b][0])
    async with as_role(pg_pool, "authenticated", two_users.a) as conn:
        assert (
            await conn.execute("UPDATE courses SET title = 'x' WHERE id = $1", theirs) == "UPDATE 0"
        )
        assert await conn.execute("DELETE FROM courses WHERE id = $1", theirs) == "DELETE 0"
    assert await pg_pool.fetchval("SELECT title FROM courses WHERE id = $1", theirs) == TITLE


async def test_user_edits_their_own_brief(pg_pool: asyncpg.Pool, two_users: TwoUsers) -> None:
    """A may change the brief columns of A's own course."""
    mine = uuid.UUID(two_users.courses[two_users.a][0])
    async with as_role(pg_pool, "authenticated", two_users.a) as conn:
        title = await conn.fetchval(
            "UPDATE courses SET title = 'Новый', difficulty = 'hard' WHERE id = $1 RETURNING title",
            mine,
        )
        assert title == "Новый"


@pytest.mark.parametrize("column", list(PROTECTED))
async def test_user_cannot_write_protected_columns(
    pg_pool: asyncpg.Pool, two_users: TwoUsers, column: str
) -> None:
    """The generation machinery's columns of A's own course are not writable by A."""
    mine = uuid.UUID(two_users.courses[two_users.a][0])
    async with as_role(pg_pool, "authenticated", two_users.a) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                f"UPDATE courses SET {column} = {PROTECTED[column]} WHERE id = $1", mine
            )


async def test_user_inserts_only_their_own_plain_courses(
    pg_pool: asyncpg.Pool, two_users: TwoUsers
) -> None:
    """A may insert a course for A, not for B, and not with a generation status."""
    a, b = two_users.a, two_users.b
    insert = "INSERT INTO courses (user_id, title) VALUES ($1, 'T') RETURNING id"
    async with as_role(pg_pool, "authenticated", a) as conn:
        assert await conn.fetchval(insert, uuid.UUID(a)) is not None
    async with as_role(pg_pool, "authenticated", a) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.fetchval(insert, uuid.UUID(b))
    async with as_role(pg_pool, "authenticated", a) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO courses (user_id, title, generation_status)"
                " VALUES ($1, 'T', 'completed')",
                uuid.UUID(a),
            )


async def test_metrics_are_unreadable_by_non_admins(
    pg_pool: asyncpg.Pool, two_users: TwoUsers
) -> None:
    """A plain user reads no metrics and cannot insert one; an admin reads them."""
    async with as_role(pg_pool, "authenticated", two_users.a) as conn:
        assert await conn.fetchval("SELECT count(*) FROM system_metrics") == 0
    async with as_role(pg_pool, "authenticated", two_users.a) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO system_metrics (event_type, severity) VALUES ('job_rollback', 'info')"
            )
    admin = await insert_user(pg_pool, "FREE", role="admin")
    async with as_role(pg_pool, "authenticated", admin) as conn:
        assert await conn.fetchval("SELECT count(*) FROM system_metrics") >= 1


async def test_service_role_inserts_metrics_but_cannot_read_them(pg_pool: asyncpg.Pool) -> None:
    """system_metrics is insert-only for service_role, directly and via record_system_metric."""
    async with as_role(pg_pool, "service_role") as conn:
        await conn.execute(
            "INSERT INTO system_metrics (event_type, severity) VALUES ('worker_timeout', 'warn')"
        )
        assert (
            await conn.fetchval("SELECT record_system_metric('worker_timeout', 'warn')") is not None
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval("SELECT count(*) FROM system_metrics")


@pytest.mark.parametrize("table", TABLES)
async def test_anon_sees_nothing(pg_pool: asyncpg.Pool, two_users: TwoUsers, table: str) -> None:
    """The anon role is refused on every table."""
    async with as_role(pg_pool, "anon") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch(f"SELECT * FROM {table}")


async def test_authenticated_without_subject_sees_nothing(
    pg_pool: asyncpg.Pool, two_users: TwoUsers
) -> None:
    """An authenticated session with no `sub` claim sees no course, profile or history."""
    async with as_role(pg_pool, "authenticated") as conn:
        for table in ("courses", "user_profiles", "generation_status_history"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0


async def test_history_is_readable_by_the_course_owner_only(
    pg_pool: asyncpg.Pool, two_users: TwoUsers
) -> None:
    """A reads the status history of A's claimed course, none of B's."""
    a, b = two_users.a, two_users.b
    async with as_role(pg_pool, "authenticated", a) as conn:
        rows = await conn.fetch("SELECT course_id FROM generation_status_history")
    assert {str(r["course_id"]) for r in rows} == {two_users.courses[a][0]}
    assert two_users.courses[b][0] not in {str(r["course_id"]) for r in rows}


async def test_profiles_are_private_and_read_only(
    pg_pool: asyncpg.Pool, two_users: TwoUsers
) -> None:
    """A reads A's profile only and cannot raise their own tier or role."""
    a = two_users.a
    async with as_role(pg_pool, "authenticated", a) as conn:
        assert [str(r["id"]) for r in await conn.fetch("SELECT id FROM user_profiles")] == [a]
    async with as_role(pg_pool, "authenticated", a) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "UPDATE user_profiles SET role = 'admin' WHERE id = $1", uuid.UUID(a)
            )


@pytest.mark.parametrize("role", ["anon", "authenticated"])
async def test_api_roles_cannot_call_the_writers(
    pg_pool: asyncpg.Pool, two_users: TwoUsers, role: str
) -> None:
    """The progress functions and the metric writer are not executable by anon/authenticated."""
    mine = two_users.courses[two_users.a][0]
    calls = [
        f"SELECT begin_course_generation('{mine}', 'wf', 'r', 'STRUCTURE_ANALYSIS', now())",
        f"SELECT update_course_progress('{mine}', 1, 'in_progress', 'm')",
        f"SELECT finish_course_generation('{mine}', NULL, 'failed', 'm')",
        "SELECT record_system_metric('job_rollback', 'info')",
    ]
    for call in calls:
        async with as_role(pg_pool, role, two_users.a) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval(call)


async def test_service_role_can_call_the_writers(
    pg_pool: asyncpg.Pool, two_users: TwoUsers
) -> None:
    """service_role executes the progress functions."""
    mine = two_users.courses[two_users.a][1]
    async with as_role(pg_pool, "service_role") as conn:
        document = await conn.fetchval(
            "SELECT begin_course_generation($1, 'wf', 'r', 'STRUCTURE_ANALYSIS', now())",
            uuid.UUID(mine),
        )
        assert document["total_steps"] == 5


async def test_summary_follows_row_security(pg_pool: asyncpg.Pool, two_users: TwoUsers) -> None:
    """get_generation_summary answers A about A's course and NULL about B's."""
    a, b = two_users.a, two_users.b
    async with as_role(pg_pool, "authenticated", a) as conn:
        own = await conn.fetchval(
            "SELECT get_generation_summary($1)", uuid.UUID(two_users.courses[a][0])
        )
        other = await conn.fetchval(
            "SELECT get_generation_summary($1)", uuid.UUID(two_users.courses[b][0])
        )
    assert own["generation_status"] == "pending"
    assert other is None


async def test_owner_deletes_their_claimed_course(
    pg_pool: asyncpg.Pool, two_users: TwoUsers
) -> None:
    """A may delete A's own claimed course; its status history goes with it."""
    mine = uuid.UUID(two_users.courses[two_users.a][0])
    async with as_role(pg_pool, "authenticated", two_users.a) as conn:
        assert await conn.execute("DELETE FROM courses WHERE id = $1", mine) == "DELETE 1"


async def test_auth_helpers_read_the_claims_like_supabase(pg_pool: asyncpg.Pool) -> None:
    """auth.uid() and auth.jwt() read request.jwt.claims; unset or emptied settings give NULL."""
    user = new_id()
    async with pg_pool.acquire() as conn, conn.transaction():
        assert await conn.fetchval("SELECT auth.uid()") is None
        await conn.execute(
            "SELECT set_config('request.jwt.claims', $1, true)", f'{{"sub": "{user}"}}'
        )
        assert str(await conn.fetchval("SELECT auth.uid()")) == user
        assert (await conn.fetchval("SELECT auth.jwt()"))["sub"] == user
        await conn.execute("SELECT set_config('request.jwt.claims', '', true)")
        assert await conn.fetchval("SELECT auth.uid()") is None
        await conn.execute("SELECT set_config('request.jwt.claim.sub', $1, true)", user)
        assert str(await conn.fetchval("SELECT auth.uid()")) == user
