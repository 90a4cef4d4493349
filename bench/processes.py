"""The processes the end-to-end benchmarks run, as production runs them: the gateway
(`python -m api`, uvicorn), workers (`python -m worker`) and the bare baseline's worker
(`python -m bench.bare`), each configured only through its environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

import embedded
from bench.common import Stack
from tests import factories


async def stack_env(stack: Stack, queue: str, **extra: str) -> dict[str, str]:
    """The environment of a gateway or worker of `stack`, on task queues of its own (`queue`,
    `<queue>-stages`, `<queue>-bare`), its own Redis key prefix (its epoch written, as a
    reconciler pass would, so starts are admitted at once), no start rate limit, and no
    worker metrics port (several workers share the host); `extra` on top."""
    env = {
        "DATABASE_URL": stack.url,
        "REDIS_URL": stack.redis_store.url,
        **factories.queue_env(queue, f"bench-{uuid.uuid4().hex[:8]}"),
        "TEMPORAL_ADDRESS": stack.env.client.service_client.config.target_host,
        "SUPABASE_JWT_SECRET": factories.JWT_SECRET,
        "START_RATE_LIMIT_PER_MINUTE": "0",
        "WORKER_METRICS_PORT": "0",
        "ENVIRONMENT": "development",
        "LOG_FORMAT": "json",
        **extra,
    }
    await factories.write_epoch(stack.redis, env["REDIS_KEY_PREFIX"])
    return env


def spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`argv` under this interpreter's environment plus `env`; its output is discarded."""
    return subprocess.Popen(
        [sys.executable, *argv],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def api_process(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return spawn(["-m", "api"], {**env, "API_PORT": str(port)})


def worker_process(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return spawn(["-m", "worker"], env)


def bare_worker_process(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return spawn(["-m", "bench.bare"], env)


@contextlib.contextmanager
def stopped_at_exit(procs: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Stop every process in `procs` (also those appended inside the block) on exit."""
    try:
        yield
    finally:
        for proc in procs:
            embedded.stop_process(proc)


async def wait_ready(http: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the API exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.2)
    raise RuntimeError("the API did not become ready within 60 s")


async def gateway(
    env: dict[str, str], clients: int
) -> tuple[httpx.AsyncClient, subprocess.Popen[bytes]]:
    """A gateway process on a free port and an HTTP client with `clients` connections to it,
    once `/readyz` answers 200 (which needs a worker polling every queue)."""
    port = embedded.free_port()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60)
    proc = api_process(env, port)
    try:
        await wait_ready(http, proc)
    except BaseException:
        embedded.stop_process(proc)
        await http.aclose()
        raise
    return http, proc


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process `pid` has used so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dev_server_pid(address: str) -> int | None:
    """The dev server process listening on `address` (`host:port`), found by its command line."""
    port = address.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"start-dev" in argv and port.encode() in argv:
            return int(entry.name)
    return None


@dataclasses.dataclass
class CpuMeter:
    """CPU seconds each named process used between `start()` and `read()`."""

    pids: dict[str, int]
    _base: dict[str, float] = dataclasses.field(default_factory=dict)

    def start(self) -> None:
        self._base = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def read(self) -> dict[str, float]:
        used = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return {name: seconds - self._base.get(name, 0.0) for name, seconds in used.items()}

    def line(self) -> str:
        return "CPU s: " + ", ".join(f"{name} {used:.1f}" for name, used in self.read().items())
