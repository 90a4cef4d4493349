"""`python -m worker`: see `worker.cli`."""

from telemetry import run_then_exit
from worker.cli import main

if __name__ == "__main__":
    run_then_exit(main)
