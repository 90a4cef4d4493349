"""The project's own processes under test: `python -m worker` and `python -m api`, each with a
log file, killed with SIGKILL (a crash) and started again with the same environment."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.client import Client

from devstack.children import REPO, die_with_parent, stop_group
from devstack.queues import QueuesPolled
from settings import Settings
from tests.factories import make_settings
from tests.helpers import eventually


@dataclass
class Service:
    """One `python -m <module>` process, restartable with the same environment."""

    module: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = field(default=0.0)

    @property
    def settings(self) -> Settings:
        return make_settings(self.env)

    def start(self) -> None:
        self.started_at = time.time()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module],
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=out,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, in-flight activities are simply lost."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc)

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"{self.module} exited with {self.proc.returncode}:\n{self.tail()}"
            )


async def worker_ready(worker: Service, client: Client) -> None:
    """Until every queue the worker serves has a poller seen since it started."""
    polled = QueuesPolled(client, worker.settings, worker.started_at - 1)

    async def polling() -> None:
        worker.check_alive()
        assert await polled(), polled.describe()

    await eventually(polling, timeout=60, interval=0.25)


async def api_ready(api: Service) -> None:
    """Until `/healthz` answers (readiness of the stores is each test's own business)."""
    url = f"http://127.0.0.1:{api.env['API_PORT']}/healthz"

    async def answers() -> None:
        api.check_alive()
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                assert (await http.get(url)).status_code == 200
        except httpx.HTTPError as exc:
            raise AssertionError(f"api not answering: {exc!r}") from exc

    await eventually(answers, timeout=60, interval=0.25)
