"""The launcher: start each part in order, wait until it is ready, stop all in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog
from temporalio.client import Client

import embedded
import temporal_connect
from devstack.children import (
    REPO,
    LaunchError,
    die_with_parent,
    http_answers,
    redact,
    shown,
    stop_group,
)
from devstack.queues import QueuesPolled
from settings import PROJECT_DATABASE, Settings

log = structlog.get_logger("devstack")


class Launcher:
    def __init__(self, settings: Settings, data_dir: Path) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.env = dict(os.environ)
        # Our processes print their spans unless the environment chose an exporter (the dev
        # server reads the same variable, knows no `console`, and is not given it).
        self.env.setdefault("OTEL_TRACES_EXPORTER", "console")
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stops: list[tuple[str, Callable[[], None]]] = []
        self.lines: list[str] = []

    def spawn(
        self, name: str, args: list[str], watch: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a child in its own process group, so a terminal's Ctrl-C reaches only us."""
        proc = subprocess.Popen(
            args, cwd=REPO, env=env or self.env, start_new_session=True, preexec_fn=die_with_parent
        )
        log.info("started", part=name, pid=proc.pid)
        if watch:
            self.children[name] = proc
        self.stops.append((name, lambda: stop_group(proc)))
        return proc

    async def resolve(self, starting: Coroutine[Any, Any, embedded.Store]) -> embedded.Store:
        """Await a store's start; a stop request meanwhile lets it finish, so it is stopped too."""
        task = asyncio.ensure_future(starting)
        try:
            await asyncio.shield(task)
        finally:
            if not task.done():  # cancelled: the start runs on in a thread regardless
                await asyncio.wait({task})
            if not task.cancelled() and task.exception() is None:
                self.track(task.result())
        return task.result()

    def track(self, store: embedded.Store) -> None:
        if store.embedded:
            self.stops.append((store.name, store.stop))

    def stop_all(self) -> None:
        while self.stops:
            name, stop = self.stops.pop()
            try:
                stop()
            except Exception:
                log.exception("stop failed", part=name)
            else:
                log.info("stopped", part=name)

    def check_children(self) -> None:
        for name, proc in self.children.items():
            if proc.poll() is not None:
                raise LaunchError(f"{name} exited unexpectedly with code {proc.returncode}")

    async def wait_for(
        self, what: str | Callable[[], str], ready: Callable[[], Awaitable[bool]], timeout: float
    ) -> None:
        """Until `ready()`; a timeout names `what` (or what `what()` says by then)."""
        deadline = time.monotonic() + timeout
        while not await ready():
            self.check_children()
            if time.monotonic() > deadline:
                waited = what if isinstance(what, str) else what()
                raise LaunchError(f"gave up after {timeout:.0f} s waiting for {waited}")
            await asyncio.sleep(0.25)

    async def start(self) -> None:
        address = self.start_temporal()
        database_url = await self.start_postgres()
        redis = await self.resolve(
            embedded.resolve_redis(self.settings.stores.redis_url, self.data_dir / "redis")
        )
        self.lines.append(f"Redis       {redact(redis.url)}  ({self.describe(redis)})")
        self.env.update(DATABASE_URL=database_url, REDIS_URL=redis.url, TEMPORAL_ADDRESS=address)
        client = await self.temporal_client(address)
        await self.run_once("migrations", [sys.executable, "-m", "db", "migrate"])
        since = time.time() - 5
        self.spawn("worker", [sys.executable, "-m", "worker"])
        polled = QueuesPolled(client, self.settings, since)
        await self.wait_for(polled.describe, polled, 90)
        self.spawn("api", [sys.executable, "-m", "api"])
        api = f"http://127.0.0.1:{self.settings.api.port}"
        await self.wait_for("the API to answer /healthz", http_answers(f"{api}/healthz"), 60)
        self.lines.insert(0, f"API         {api}  (docs {api}/docs, readiness {api}/readyz)")
        self.lines.insert(1, self.metrics_line(api))
        block = ["", "course-generator is up", *(f"  {line}" for line in self.lines)]
        print("\n".join([*block, "  Stop everything with Ctrl-C.", ""]), flush=True)

    def metrics_line(self, api: str) -> str:
        port = self.settings.telemetry.worker_metrics_port
        worker = f"http://127.0.0.1:{port}/metrics" if port else "off (WORKER_METRICS_PORT=0)"
        return f"Metrics     {api}/metrics (gateway), {worker} (worker)"

    def start_temporal(self) -> str:
        """The dev server on TEMPORAL_DEV_PORT, unless TEMPORAL_ADDRESS names another server."""
        temporal = self.settings.temporal
        ports = {"API_PORT": self.settings.api.port}
        if self.settings.telemetry.worker_metrics_port:
            ports["WORKER_METRICS_PORT"] = self.settings.telemetry.worker_metrics_port
        if "address" in temporal.model_fields_set:
            self.lines.append(f"Temporal    {temporal.address}  (from TEMPORAL_ADDRESS)")
        else:
            ports |= {"TEMPORAL_DEV_PORT": temporal.dev_port, "TEMPORAL_UI_PORT": temporal.ui_port}
        for name, port in ports.items():
            if embedded.port_open("127.0.0.1", port):
                raise LaunchError(f"port {port} is already in use: set {name} to a free port")
        if "address" in temporal.model_fields_set:
            return temporal.address
        self.data_dir.mkdir(parents=True, exist_ok=True)
        db_file = self.data_dir / "temporal.db"
        args = embedded.temporal_dev_server_args(
            temporal.dev_port, temporal.ui_port, db_file, ["--log-level", "error"]
        )
        server_env = {k: v for k, v in self.env.items() if k != "OTEL_TRACES_EXPORTER"}
        self.spawn("temporal", args, env=server_env)
        self.lines += [
            f"Temporal    127.0.0.1:{temporal.dev_port}  (embedded dev server, {shown(db_file)})",
            f"Web UI      http://127.0.0.1:{temporal.ui_port}",
        ]
        return f"127.0.0.1:{temporal.dev_port}"

    async def start_postgres(self) -> str:
        """The project's database URL; on a local or embedded server it is created if missing."""
        store = await self.resolve(
            embedded.resolve_postgres(self.settings.stores.database_url, self.data_dir / "postgres")
        )
        url = store.url
        if store.source != "environment":
            await embedded.ensure_database(store.url, PROJECT_DATABASE)
            url = embedded.with_database(store.url, PROJECT_DATABASE)
        self.lines.append(f"PostgreSQL  {redact(url)}  ({self.describe(store)})")
        return url

    def describe(self, store: embedded.Store) -> str:
        where = {"environment": "from the environment", "local": "local server"}
        return where.get(store.source, f"embedded, data under {shown(self.data_dir)}")

    async def temporal_client(self, address: str) -> Client:
        clients: list[Client] = []

        async def listed() -> bool:
            try:
                if not clients:
                    clients.append(await temporal_connect.connect(self.settings.temporal, address))
                missing = await temporal_connect.missing_search_attributes(clients[0])
            except Exception:  # not up yet: any connect or RPC error means "try again"
                return False
            return not missing

        await self.wait_for("Temporal to list the search attributes", listed, 90)
        return clients[0]

    async def run_once(self, name: str, args: list[str]) -> None:
        proc = self.spawn(name, args, watch=False)

        async def exited() -> bool:
            return proc.poll() is not None

        await self.wait_for(name, exited, 300)
        del self.stops[-1]  # nothing was started after it
        if proc.returncode != 0:
            raise LaunchError(f"{name} failed with exit code {proc.returncode}")

    async def run(self) -> int:
        """Start, then watch the children until one dies (1) or a signal asks us to stop (0)."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        main = asyncio.create_task(self.start_and_watch())
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if main.done():
            return main.result()
        log.info("stop requested; stopping everything")
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await main
        return 0

    async def start_and_watch(self) -> int:
        try:
            await self.start()
        except LaunchError as exc:
            log.error("start-up failed", reason=str(exc))
            return 1
        except Exception:
            log.exception("start-up failed")
            return 1
        while True:
            try:
                self.check_children()
            except LaunchError as exc:
                log.error("stopping everything", reason=str(exc))
                return 1
            await asyncio.sleep(0.5)
