"""`python -m api`: serve the gateway with uvicorn on `API_HOST`:`API_PORT`."""

from __future__ import annotations

from typing import Any

import uvicorn

import observability
import telemetry
from api.app import create_app
from settings import ApiSettings, settings_or_exit


def server_options(api: ApiSettings) -> dict[str, Any]:
    """uvicorn's options from the `API_*` settings (docs/operations.md, "Tuning")."""
    return {
        "host": api.host,  # loopback unless API_HOST opens it to other hosts
        "port": api.port,
        "loop": api.loop,
        "http": api.http,
        "backlog": api.backlog,
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
    }


def main() -> None:
    settings = settings_or_exit()
    telemetry.configure_logging(
        settings.log.level, settings.log.format, settings.environment, settings.version
    )
    observability.configure_tracing(settings.telemetry, settings.environment, settings.version)
    uvicorn.run(create_app(settings), **server_options(settings.api))


if __name__ == "__main__":
    telemetry.run_then_exit(main)
