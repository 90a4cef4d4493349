"""One repeat of `bench.tracing`, in a process of its own (a process installs its tracer
provider once, so "off" and "on" cannot share one):

- `python -m bench.traced gateway off|on`: the gateway start benchmark's measured step (a warm-up
  step first) against an API process of its own, the workers in this process;
- `python -m bench.traced orchestration off|on`: the orchestration benchmark's round of our
  workflow (a warm-up round first);
- `python -m bench.traced api off|on`: the API process of a gateway repeat.

"on" installs what `OTEL_TRACES_EXPORTER` would, with an in-memory exporter behind the batch
processor: FastAPI's spans, Temporal's interceptor (every client here comes from
`temporal_connect.connect`, so "off" is production's `none`), asyncpg and Redis. The figures are
printed as one JSON line, last, with the CPU time our processes spent per start or run; the span
counts show that "on" traced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import embedded
import observability
import temporal_connect
from bench import gateway, orchestration, processes
from bench.common import Stack, freeze_heap_as_a_worker_does, local_stack
from tests import factories
from worker import build_workers

SPANS_FILE = "BENCH_SPANS_FILE"


def traced(mode: str) -> InMemorySpanExporter | None:
    """For "on": the process's provider, its spans kept in memory; None for "off"."""
    if mode != "on":
        return None
    exporter = InMemorySpanExporter()
    provider = observability.new_provider("course-generator-bench", "development", "bench")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    observability.install(provider)
    return exporter


def span_count(exporter: InMemorySpanExporter | None) -> int:
    if exporter is None:
        return 0
    observability.flush()
    return len(exporter.get_finished_spans())


async def gateway_repeat(mode: str) -> dict[str, float]:
    exporter = traced(mode)
    queue, port = f"bench-tr-{uuid.uuid4().hex[:8]}", embedded.free_port()
    spans_file = Path(tempfile.gettempdir()) / f"bench-spans-{uuid.uuid4().hex[:8]}"
    async with local_stack("tracing") as stack, contextlib.AsyncExitStack() as running:
        env = api_env(stack, queue, port)
        settings = factories.make_settings(env)
        client = await temporal_connect.connect(settings.temporal)
        await factories.write_epoch(stack.redis, settings.stores.redis_key_prefix)
        for worker in build_workers(client, settings, stack.pool, stack.redis):
            await running.enter_async_context(worker)
        freeze_heap_as_a_worker_does()
        proc = api_process(mode, {**env, SPANS_FILE: str(spans_file)})
        http = await running.enter_async_context(
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)
        )
        try:
            await processes.wait_ready(http, proc)
            bench = gateway.Bench(client, stack.pool, http, queue)
            await bench.gateway_start()  # warm-up
            await bench.settle()
            cpu = cpu_seconds(proc.pid)
            result = await bench.gateway_start()
            cpu = cpu_seconds(proc.pid) - cpu
        finally:
            embedded.stop_process(proc)
    return {
        "p50": result.p(50),
        "p95": result.p(95),
        "cpu": cpu * 1000 / len(result.samples),
        "spans": span_count(exporter) + taken_count(spans_file),
    }


def taken_count(path: Path) -> int:
    """The API process's span count, read once (0 when it wrote none)."""
    count = int(path.read_text()) if path.exists() else 0
    path.unlink(missing_ok=True)
    return count


def api_env(stack: Stack, queue: str, port: int) -> dict[str, str]:
    return {
        "DATABASE_URL": stack.url,
        "REDIS_URL": stack.redis_store.url,
        **factories.queue_env(queue, f"{queue}-keys"),
        "TEMPORAL_ADDRESS": _address(stack),
        "SUPABASE_JWT_SECRET": factories.JWT_SECRET,
        "START_RATE_LIMIT_PER_MINUTE": "0",
        "API_PORT": str(port),
        "LOG_LEVEL": "warning",
        "WORKER_METRICS_PORT": "0",
    }


def api_process(mode: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.traced", "api", mode],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def serve_api(mode: str) -> None:
    """The gateway as `python -m api` serves it, traced or not; its span count to a file."""
    import uvicorn

    from api.app import create_app
    from settings import load_settings

    settings = load_settings(env_file=None)
    exporter = traced(mode)
    app = create_app(settings)
    uvicorn.run(app, host="127.0.0.1", port=settings.api.port, log_config=None, access_log=False)
    Path(os.environ[SPANS_FILE]).write_text(str(span_count(exporter)))


async def orchestration_repeat(mode: str) -> dict[str, float]:
    exporter = traced(mode)
    async with local_stack("tracing") as stack, contextlib.AsyncExitStack() as running:
        queue = f"bench-tr-{uuid.uuid4().hex[:8]}"
        settings = factories.make_settings(
            factories.queue_env(queue, f"{queue}-keys"),
            TEMPORAL_ADDRESS=_address(stack),
            SIMULATED_STAGE_SECONDS="0",
        )
        client = await temporal_connect.connect(settings.temporal)
        await factories.write_epoch(stack.redis, settings.stores.redis_key_prefix)
        for worker in build_workers(client, settings, stack.pool, stack.redis):
            await running.enter_async_context(worker)
        freeze_heap_as_a_worker_does()
        bench = orchestration.Bench(client, stack.pool, queue)
        await orchestration.ours_round(bench)  # warm-up
        cpu = cpu_seconds()
        stats = await orchestration.ours_round(bench)
        cpu = cpu_seconds() - cpu
    return {
        "rate": stats.rate,
        "p50": stats.p50_ms,
        "cpu": cpu * 1000 / stats.count,
        "spans": span_count(exporter),
    }


def cpu_seconds(api_pid: int | None = None) -> float:
    """CPU time used so far by this process (load generator and workers) and, when given, the
    API process: far less disturbed by other load on the machine than latencies are."""
    used = time.process_time()
    if api_pid is not None:
        fields = Path(f"/proc/{api_pid}/stat").read_text().rsplit(")", 1)[1].split()
        used += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def _address(stack: Stack) -> str:
    return str(stack.env.client.service_client.config.target_host)


def main(argv: list[str]) -> None:
    kind, mode = argv
    if kind == "api":
        serve_api(mode)
        return
    repeat = gateway_repeat if kind == "gateway" else orchestration_repeat
    print(json.dumps(asyncio.run(repeat(mode))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
