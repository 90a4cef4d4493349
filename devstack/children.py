"""Child processes and small helpers of the launcher: spawn in a session, stop by group."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

REPO = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 15.0  # above the worker's 10 s graceful shutdown
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


class LaunchError(Exception):
    """Start-up cannot go on; `str()` says why in one line."""


def data_dir_from_env() -> Path:
    """`DEVSTACK_DATA_DIR` (tests point it at a temporary folder), else `.data/` in the repo."""
    return Path(os.environ.get("DEVSTACK_DATA_DIR") or REPO / ".data").resolve()


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def shown(path: Path) -> str:
    """`path` relative to the working directory when it is inside it (`.data/temporal.db`)."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def die_with_parent() -> None:
    # Runs in the child before exec: if the launcher is killed outright, the child gets SIGTERM.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_group(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the child's process group, SIGKILL it after `timeout`, and reap the child."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def http_answers(url: str) -> Callable[[], Awaitable[bool]]:
    async def ready() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(url)).status_code == 200
        except httpx.HTTPError:
            return False

    return ready
