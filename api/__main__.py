"""`python -m api`: serve the gateway with uvicorn on `API_HOST`:`API_PORT`."""

from __future__ import annotations

import uvicorn

import observability
import telemetry
from api.app import create_app
from settings import settings_or_exit


def main() -> None:
    settings = settings_or_exit()
    telemetry.configure_logging(
        settings.log.level, settings.log.format, settings.environment, settings.version
    )
    observability.configure_tracing(settings.telemetry, settings.environment, settings.version)
    uvicorn.run(
        create_app(settings),
        host=settings.api.host,  # loopback unless API_HOST opens it to other hosts
        port=settings.api.port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    telemetry.run_then_exit(main)
