"""`telemetry.run_then_exit`: exit codes and messages survive the hard exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("body", "code", "stderr"),
    [
        ("return None", 0, ""),
        ("return 3", 3, ""),
        ("raise SystemExit('schema is behind')", 1, "schema is behind"),
        ("raise SystemExit(2)", 2, ""),
        ("raise RuntimeError('boom')", 1, "RuntimeError: boom"),
    ],
)
def test_exit_code_and_message(body: str, code: int, stderr: str) -> None:
    """The process exits with main's code, prints a SystemExit message, and flushes output."""
    script = (
        "import telemetry\n"
        "def main():\n"
        "    print('done', flush=False)\n"
        f"    {body}\n"
        "telemetry.run_then_exit(main)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == code
    assert result.stdout == "done\n"
    assert stderr in result.stderr
