"""`python -m devstack` (what `make run` runs)."""

from __future__ import annotations

import asyncio
import logging
import signal

from devstack.children import data_dir_from_env
from devstack.launcher import Launcher
from settings import settings_or_exit
from telemetry import configure_logging, run_then_exit


def main() -> int:
    settings = settings_or_exit()
    log_settings = settings.log
    configure_logging(
        log_settings.level, log_settings.format, settings.environment, settings.version
    )
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # chatty at INFO
    launcher = Launcher(settings, data_dir_from_env())
    try:
        return asyncio.run(launcher.run())
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # one stop at a time; each is bounded
            signal.signal(sig, signal.SIG_IGN)
        launcher.stop_all()


if __name__ == "__main__":
    run_then_exit(main)
