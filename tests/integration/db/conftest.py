"""Fixtures of the database tests: the repository on the session pool, throwaway databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

import embedded
from db.repository import CourseRepository


@pytest.fixture
def repo(pg_pool: asyncpg.Pool) -> CourseRepository:
    return CourseRepository(pg_pool)


@pytest.fixture
async def empty_database(pg_server: embedded.Store) -> AsyncIterator[str]:
    """A new empty database on the session's server, dropped afterwards."""
    name = f"cg_db_test_{uuid.uuid4().hex[:10]}"
    await embedded.ensure_database(pg_server.url, name)
    yield embedded.with_database(pg_server.url, name)
    await embedded.drop_database(pg_server.url, name)
