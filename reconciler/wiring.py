"""A `Reconciler` on the process's pool, Redis client and Temporal client, from the settings."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis
from temporalio.client import Client

from admission import Leases
from db.reconcile import ReconcileRepository
from db.repository import CourseRepository
from reconciler.core import Count, Policy, Reconciler, Stores
from reconciler.progress import ProgressMemory
from reconciler.runs import RunLookup
from settings import Settings


def policy_of(settings: Settings) -> Policy:
    return Policy(
        grace_seconds=settings.reconcile.grace_seconds,
        stuck_after_seconds=settings.stores.stuck_after_seconds,
        default_ttl_seconds=settings.workflow.execution_timeout_seconds,
    )


def build_reconciler(
    settings: Settings,
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    client: Client,
    count: Count | None = None,
    policy: Policy | None = None,
) -> Reconciler:
    prefix = settings.stores.redis_key_prefix
    stores = Stores(
        courses=CourseRepository(pool),
        reconcile=ReconcileRepository(pool),
        leases=Leases(redis, prefix),
        runs=RunLookup(client),
        progress=ProgressMemory(redis, prefix, settings.stores.stuck_after_seconds),
    )
    return Reconciler(stores, policy or policy_of(settings), count)
