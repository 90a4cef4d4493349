"""Fixtures of the database tests: the repository on the session pool."""

from __future__ import annotations

import asyncpg
import pytest

from db.repository import CourseRepository


@pytest.fixture
def repo(pg_pool: asyncpg.Pool) -> CourseRepository:
    return CourseRepository(pg_pool)
