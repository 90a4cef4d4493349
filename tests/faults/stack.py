"""The breakable stack: its own PostgreSQL, Redis and Temporal dev server, the project's worker
and gateway processes on short settings, and the handles the checks read through.

Started once per session; every fault test restores what it broke before it ends. Its
directory (logs of every process) is removed at the end unless `FAULTS_KEEP` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis
from temporalio.client import Client

import embedded
import temporal_connect
from admission import Leases, create_redis
from db.migrate import migrate
from db.pool import create_pool
from settings import Settings
from tests.factories import JWT_SECRET, make_settings
from tests.faults.services import Service, api_ready, worker_ready
from tests.faults.stores import PostgresCluster, RedisServer, TemporalServer
from tests.helpers import eventually

DATABASE = "course_generator_faults"
KEY_PREFIX = "faults"
# Short everything: heartbeats, stages, the reconciler's period and grace. A deadline margin
# must cover PROGRESS_RETRY_SECONDS + STAGE_HEARTBEAT_TIMEOUT_SECONDS + 10 (settings refuse
# less), and progress writes must outlive the 10 s PostgreSQL outage.
SHORT_SETTINGS = {
    "ENVIRONMENT": "test",
    "LOG_LEVEL": "warning",
    "LOG_FORMAT": "json",
    "OTEL_TRACES_EXPORTER": "none",
    "WORKER_METRICS_PORT": "0",
    "SUPABASE_JWT_SECRET": JWT_SECRET,
    "START_RATE_LIMIT_PER_MINUTE": "0",
    "STAGE_HEARTBEAT_TIMEOUT_SECONDS": "2",
    "SIMULATED_STAGE_SECONDS": "1",
    # Every run of a workload has its stage slot: a fault's convergence then measures recovery,
    # not a backlog of the workload's own making.
    "STAGE_CAPACITY": "30",
    "RECONCILE_INTERVAL_SECONDS": "5",
    "RECONCILE_GRACE_SECONDS": "5",
    # A killed worker's cached runs move to a live worker after this long, not the SDK's 10 s.
    "WORKER_STICKY_TIMEOUT_SECONDS": "3",
    "PROGRESS_RETRY_SECONDS": "20",
    "RUN_DEADLINE_MARGIN_SECONDS": "32",
    "REDIS_KEY_PREFIX": KEY_PREFIX,
}
TEMPORAL_ARGS = ["--log-level", "error"]


@dataclass
class FaultStack:
    root: Path
    postgres: PostgresCluster
    redis: RedisServer
    temporal: TemporalServer
    env: dict[str, str]
    services: list[Service] = field(default_factory=list)
    client: Client | None = None
    pool: asyncpg.Pool | None = None
    redis_client: aioredis.Redis | None = None

    @property
    def settings(self) -> Settings:
        return make_settings(self.env)

    @property
    def converge_seconds(self) -> float:
        """The suite's bound: one reconcile interval + the grace + 10 s after a fault ends."""
        reconcile = self.settings.reconcile
        return reconcile.interval_seconds + reconcile.grace_seconds + 10

    @property
    def worker(self) -> Service:
        return self.services[0]

    @property
    def api(self) -> Service:
        return self.services[1]

    @property
    def leases(self) -> Leases:
        assert self.redis_client is not None
        return Leases(self.redis_client, KEY_PREFIX)

    def service(self, module: str, name: str, **overrides: str) -> Service:
        """A process of the stack's (`python -m <module>`) with `overrides` on its environment;
        a gateway gets a free API_PORT of its own."""
        env = {**self.env, **overrides}
        if module == "api":
            env.setdefault("API_PORT", str(embedded.free_port()))
        proc = Service(module, env, self.root / f"{name}.log")
        self.services.append(proc)
        return proc

    async def start_worker(self, worker: Service | None = None) -> None:
        worker = worker or self.worker
        worker.start()
        assert self.client is not None
        await worker_ready(worker, self.client)

    async def start_api(self, api: Service) -> str:
        api.start()
        await api_ready(api)
        return f"http://127.0.0.1:{api.env['API_PORT']}"

    async def epoch_written(self) -> None:
        """Until the worker's first reconcile pass has built the lease store and written its
        epoch (until then every start answers 503)."""

        async def written() -> None:
            assert await self.leases.epoch() is not None, "no lease epoch yet"

        await eventually(written, timeout=60, interval=0.25)

    def retire(self, service: Service) -> None:
        """Stop a process started for one test; the stack no longer watches it."""
        service.stop()
        self.services.remove(service)

    async def connect_temporal(self) -> Client:
        async def connected() -> Client:
            try:
                client = await temporal_connect.connect(self.settings.temporal)
                missing = await temporal_connect.missing_search_attributes(client)
            except RuntimeError as exc:
                raise AssertionError(f"temporal not answering: {exc}") from exc
            assert not missing, f"search attributes not listed yet: {missing}"
            return client

        return await eventually(connected, timeout=60, interval=0.25)

    async def restore(self) -> None:
        """Start again whatever a failed test left down, so one failure does not fail the
        tests after it."""
        if not self.postgres.running():
            await asyncio.to_thread(self.postgres.start)
        for server in (self.redis, self.temporal):
            if server.proc is None or server.proc.poll() is not None:
                await asyncio.to_thread(server.start)
        for service in self.services:
            if service.proc is not None and service.proc.poll() is not None:
                if service.module == "worker":
                    await self.start_worker(service)
                else:
                    await self.start_api(service)
        await self.epoch_written()

    def check_alive(self) -> None:
        for service in self.services:
            service.check_alive()


async def _open_stores(root: Path) -> tuple[PostgresCluster, RedisServer, TemporalServer]:
    postgres = PostgresCluster(root / "pg")
    postgres.init()
    postgres.start()
    await embedded.ensure_database(postgres.admin_url, DATABASE)
    redis = RedisServer(data_dir=root / "redis")
    redis.start()
    temporal = TemporalServer(db_file=root / "temporal.db", extra_args=TEMPORAL_ARGS)
    temporal.start()
    return postgres, redis, temporal


def _stack_env(
    postgres: PostgresCluster, redis: RedisServer, temporal: TemporalServer
) -> dict[str, str]:
    unset = {"TEMPORAL_ADDRESS", "DATABASE_URL", "REDIS_URL", "API_PORT"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return (
        env
        | SHORT_SETTINGS
        | {
            "DATABASE_URL": embedded.with_database(postgres.admin_url, DATABASE),
            "REDIS_URL": redis.url,
            "TEMPORAL_ADDRESS": temporal.address,
        }
    )


@contextlib.asynccontextmanager
async def open_stack(overrides: Mapping[str, str] | None = None) -> AsyncIterator[FaultStack]:
    """Start the stores, migrate, start one worker and one gateway; stop all on exit."""
    # Not under pytest's temp root, which only its owner may traverse: PostgreSQL runs as its
    # own system user when the suite runs as root.
    root = Path(tempfile.mkdtemp(prefix="cg-faults-"))
    os.chmod(root, 0o755)
    stores = await _open_stores(root)
    stack = FaultStack(root, *stores, env=_stack_env(*stores) | dict(overrides or {}))
    try:
        await migrate(stack.env["DATABASE_URL"])
        stack.client = await stack.connect_temporal()
        stack.pool = await create_pool(stack.env["DATABASE_URL"], min_size=1, max_size=8)
        stack.redis_client = create_redis(stack.redis.url)
        stack.service("worker", "worker")
        api = stack.service("api", "api")
        await stack.start_worker()
        await stack.start_api(api)
        await stack.epoch_written()
        yield stack
    finally:
        await _close(stack)
        if not os.environ.get("FAULTS_KEEP"):
            shutil.rmtree(root, ignore_errors=True)


async def _close(stack: FaultStack) -> None:
    for service in reversed(stack.services):
        service.stop()
    if stack.pool is not None:
        with contextlib.suppress(Exception):
            await stack.pool.close()
    if stack.redis_client is not None:
        await stack.redis_client.aclose()
    stack.temporal.stop()
    stack.redis.kill()
    if stack.postgres.running():
        stack.postgres.stop()
