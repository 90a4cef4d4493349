"""Running the workers: the stores, the dispatcher and the workers for as long as the process
lives, until SIGTERM/SIGINT, then a graceful stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

from temporalio.worker import Worker

import heap
from admission import create_redis
from observability import metrics_runtime_or_exit
from settings import Settings
from worker.connect import connect_with_retries, open_store_pool
from worker.dispatch import webhook_dispatcher
from worker.orchestration import build_workers
from worker.schedule import start_reconciler
from worker.stages import stage_workers

log = logging.getLogger("worker")


async def serve(settings: Settings, stop: asyncio.Event, stages_only: bool = False) -> None:
    """Run the workers until `stop` is set, then shut them down gracefully; `stages_only`: just
    the stage workers, without PostgreSQL and Redis. The webhook dispatcher runs with the
    orchestration worker (it first starts, last stops: it needs no Temporal)."""
    runtime = metrics_runtime_or_exit(settings.telemetry.worker_metrics_port)
    freeze = settings.worker.gc_freeze
    if stages_only:
        client = await connect_with_retries(settings, runtime)
        await run_until(stage_workers(client, settings), stop, freeze_heap=freeze)
        return
    pool = await open_store_pool(settings)
    redis = create_redis(settings.stores.redis_dsn)
    dispatcher = webhook_dispatcher(settings, pool, runtime)
    try:
        async with dispatcher.running(settings.stores.database_dsn):
            client = await connect_with_retries(settings, runtime)
            workers = build_workers(client, settings, pool, redis)
            await run_until(
                workers, stop, lambda: start_reconciler(client, settings), freeze_heap=freeze
            )
    finally:
        await redis.aclose()
        await pool.close()


async def run_until(
    workers: Sequence[Worker],
    stop: asyncio.Event,
    started: Callable[[], Awaitable[None]] | None = None,
    *,
    freeze_heap: bool = False,
) -> None:
    """Run `workers` until `stop`; `started` is called once they poll. With `freeze_heap`
    (`WORKER_GC_FREEZE`) the start-up heap is frozen first (`heap`): the workers are built and
    connected, and no run is in flight yet (a run frozen in the cache would never be collected
    once evicted)."""
    if freeze_heap:
        heap.freeze_start_up_heap()
    async with contextlib.AsyncExitStack() as stack:
        for worker in workers:
            await stack.enter_async_context(worker)
        log.info("worker polling %s", [w.task_queue for w in workers])
        if started is not None:
            await started()
        await stop.wait()
        log.info("shutting down")


async def run_until_signalled(settings: Settings, stages_only: bool = False) -> None:
    """`serve` until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(settings, stop, stages_only)
