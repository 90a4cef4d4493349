"""`python -m devstack` (what `make run` runs) as a subprocess: ready, then stopped cleanly."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

import embedded
from tests.helpers import eventually

REPO = Path(__file__).resolve().parents[2]
PORTS = ("TEMPORAL_DEV_PORT", "TEMPORAL_UI_PORT", "API_PORT", "WORKER_METRICS_PORT")
pytestmark = pytest.mark.timeout(90)


@dataclass
class Launch:
    proc: subprocess.Popen[bytes]
    ports: dict[str, int]
    data_dir: Path
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def output(self) -> str:
        """The end of the launcher's output, for failure messages."""
        return self.text()[-6000:]

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports['API_PORT']}"


def start_launcher(tmp_path: Path, data_dir: Path, overrides: Mapping[str, str]) -> Launch:
    ports = {name: embedded.free_port() for name in PORTS}
    unset = ("TEMPORAL_ADDRESS", "DATABASE_URL", "REDIS_URL")
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env.update({name: str(port) for name, port in ports.items()})
    env.update(
        DEVSTACK_DATA_DIR=str(data_dir),
        LOG_FORMAT="json",
        REDIS_KEY_PREFIX=f"launcher-{uuid.uuid4().hex[:8]}",
        START_RATE_LIMIT_PER_MINUTE="0",
        **overrides,
    )
    log = tmp_path / "launcher.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack"], cwd=REPO, env=env, stdout=out, stderr=out
        )
    return Launch(proc, ports, data_dir, log)


async def printed_block(launch: Launch) -> dict[str, str]:
    """The launcher's "where is everything" block, by first word (it may trail `/readyz`)."""

    async def printed() -> dict[str, str]:
        output = launch.text()
        assert "course-generator is up" in output, launch.output()
        after = output[output.index("course-generator is up") :].splitlines()[1:]
        assert "" in after, "block not complete yet"
        lines = [line.strip() for line in after[: after.index("")] if line.startswith("  ")]
        return {line.split()[0]: line for line in lines if line}

    return await eventually(printed, timeout=10)


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, found through /proc parent links."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        found |= children
        frontier = children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def postmaster_pid(data_dir: Path) -> int | None:
    pid_file = data_dir / "postgres" / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


async def metrics_answer(launch: Launch) -> None:
    """The gateway's `/metrics` and the worker's Prometheus endpoint both serve metrics."""
    worker = f"http://127.0.0.1:{launch.ports['WORKER_METRICS_PORT']}/metrics"
    async with httpx.AsyncClient(timeout=5) as http:
        gateway = await http.get(f"{launch.api}/metrics")
        assert "http_requests_total" in gateway.text, gateway.text[:500]
        sdk = await http.get(worker)
        assert "temporal_worker_task_slots_available" in sdk.text, sdk.text[:500]


async def wait_ready(launch: Launch) -> None:
    """`/readyz` 200 (or `/healthz` while the API has no `/readyz`), failing fast on exit."""

    async def ready() -> None:
        code = launch.proc.poll()
        if code is not None:
            pytest.fail(f"launcher exited with {code} before ready:\n{launch.output()}")
        async with httpx.AsyncClient(base_url=launch.api, timeout=3) as client:
            try:
                response = await client.get("/readyz")
                if response.status_code == 404:
                    response = await client.get("/healthz")
            except httpx.HTTPError as exc:
                raise AssertionError(f"API not answering: {exc!r}") from exc
        assert response.status_code == 200, response.text

    try:
        await eventually(ready, timeout=60, interval=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- launcher output ---\n{launch.output()}") from None


async def web_ui_answers(launch: Launch) -> None:
    async def answers() -> None:
        url = f"http://127.0.0.1:{launch.ports['TEMPORAL_UI_PORT']}/"
        async with httpx.AsyncClient(timeout=3) as client:
            try:
                response = await client.get(url)
            except httpx.HTTPError as exc:
                raise AssertionError(f"Web UI not answering: {exc!r}") from exc
        assert response.status_code < 500

    await eventually(answers, timeout=10)


async def stop_and_check(launch: Launch, started: set[int]) -> None:
    """SIGINT the launcher; it exits 0, and no process it started nor any port is left."""
    assert started, "the launcher started no child processes"
    launch.proc.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(launch.proc.wait, 45)
    assert code == 0, launch.output()
    await all_gone(launch, started)


async def all_gone(launch: Launch, started: set[int]) -> None:
    async def gone() -> None:
        left = {pid for pid in started if alive(pid)}
        assert not left, f"processes left after stop: {sorted(left)}"
        busy = {p for p in launch.ports.values() if embedded.port_open("127.0.0.1", p)}
        assert not busy, f"ports still listening after stop: {sorted(busy)}"

    await eventually(gone, timeout=10)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


@pytest.fixture
def launch_dir() -> Iterator[Path]:
    """A data folder outside pytest's temp root: pgserver runs PostgreSQL as another user, who
    must traverse the path, and every pytest session re-restricts its temp root to its owner."""
    path = Path(tempfile.mkdtemp(prefix="cg-launcher-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class Launcher:
    """Starts `python -m devstack` with this test's log and data folder."""

    tmp_path: Path
    data_dir: Path
    launches: list[Launch] = field(default_factory=list)

    def start(self, **overrides: str) -> Launch:
        launch = start_launcher(self.tmp_path, self.data_dir, overrides)
        self.launches.append(launch)
        return launch

    def kill_leftovers(self) -> None:
        """Kill whatever a failed test left running, so one failure cannot leak processes."""
        for launch in self.launches:
            if launch.proc.poll() is None:
                launch.proc.kill()
                launch.proc.wait()
            for pid in {*descendants(launch.proc.pid), postmaster_pid(launch.data_dir) or 0} - {0}:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def launcher(tmp_path: Path, launch_dir: Path) -> Iterator[Launcher]:
    started = Launcher(tmp_path, launch_dir)
    yield started
    started.kill_leftovers()


@pytest.fixture
def stores(empty_database: str, redis_url: str) -> dict[str, str]:
    """The session's PostgreSQL (a database of the test's own) and Redis, by URL."""
    return {"DATABASE_URL": empty_database, "REDIS_URL": redis_url}


async def test_launcher_serves_readiness_and_stops_everything_on_sigint(
    launcher: Launcher, stores: dict[str, str]
) -> None:
    """With store URLs given, the launcher gets to readiness and SIGINT leaves nothing behind."""
    launch = launcher.start(**stores)
    await wait_ready(launch)
    await web_ui_answers(launch)
    block = await printed_block(launch)
    assert set(block) >= {"API", "Metrics", "Temporal", "Web", "PostgreSQL", "Redis"}, block
    assert "(from the environment)" in block["PostgreSQL"], block
    await metrics_answer(launch)
    started = descendants(launch.proc.pid)

    await stop_and_check(launch, started)


async def test_launcher_embeds_stores_when_none_answers(launcher: Launcher) -> None:
    """With no store URL and no local server answering, it embeds both and stops them too."""
    closed = {name: embedded.free_port() for name in ("pg", "redis")}
    launch = launcher.start(
        DEVSTACK_LOCAL_POSTGRES_URL=f"postgresql://postgres@127.0.0.1:{closed['pg']}/postgres",
        DEVSTACK_LOCAL_REDIS_URL=f"redis://127.0.0.1:{closed['redis']}/0",
    )
    await wait_ready(launch)
    block = await printed_block(launch)
    for part in ("Temporal", "PostgreSQL", "Redis"):
        assert "(embedded" in block.get(part, ""), block
    postmaster = postmaster_pid(launch.data_dir)
    assert postmaster is not None, "embedded PostgreSQL wrote no postmaster.pid"
    started = descendants(launch.proc.pid) | {postmaster}

    await stop_and_check(launch, started)


async def test_launcher_stops_everything_when_a_child_dies(
    launcher: Launcher, stores: dict[str, str]
) -> None:
    """When the worker dies, the launcher stops every other process and exits non-zero."""
    launch = launcher.start(**stores)
    await wait_ready(launch)
    started = descendants(launch.proc.pid)
    workers = [pid for pid in started if command_line(pid).endswith("-m worker")]
    assert len(workers) == 1, {pid: command_line(pid) for pid in started}

    os.kill(workers[0], signal.SIGKILL)

    code = await asyncio.to_thread(launch.proc.wait, 45)
    assert code == 1, launch.output()
    assert "worker exited unexpectedly" in launch.text()
    await all_gone(launch, started)


def test_launcher_refuses_a_port_in_use(launcher: Launcher) -> None:
    """A port already taken stops start-up at once, naming its variable, starting nothing."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        launch = launcher.start(TEMPORAL_UI_PORT=str(port))
        code = launch.proc.wait(timeout=30)

    assert code == 1, launch.output()
    assert f"port {port} is already in use: set TEMPORAL_UI_PORT" in launch.text()
    assert '"started"' not in launch.text()


def processes_mentioning(text: str) -> list[int]:
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and text in command_line(int(entry.name)) and alive(int(entry.name))
    ]


async def test_launcher_stopped_while_embedding_postgres_leaves_no_server(
    launcher: Launcher, launch_dir: Path
) -> None:
    """SIGINT while the embedded PostgreSQL is still starting stops it too once it is up."""
    closed = embedded.free_port()
    launch = launcher.start(
        DEVSTACK_LOCAL_POSTGRES_URL=f"postgresql://postgres@127.0.0.1:{closed}/postgres"
    )

    async def initialising() -> None:
        assert (launch_dir / "postgres").exists(), launch.output()

    await eventually(initialising, timeout=30, interval=0.05)
    launch.proc.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(launch.proc.wait, 45)

    assert code == 0, launch.output()
    assert processes_mentioning(str(launch_dir / "postgres")) == [], launch.output()
