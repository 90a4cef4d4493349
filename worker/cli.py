"""`python -m worker [stages | setup-search-attributes]`: settings, logging and tracing, then
the mode the arguments name."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import temporal_connect
from observability import configure_tracing
from settings import Settings, settings_or_exit
from telemetry import configure_logging
from worker.running import run_until_signalled


async def setup_search_attributes(settings: Settings) -> list[str]:
    """Register the missing search attributes as Keyword; returns the names added."""
    client = await temporal_connect.connect(settings.temporal)
    return await temporal_connect.add_missing_search_attributes(client)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    settings = settings_or_exit()
    log_settings = settings.log
    configure_logging(
        log_settings.level, log_settings.format, log_settings.environment, settings.version
    )
    configure_tracing(settings.telemetry, log_settings.environment, settings.version)
    if args == ["setup-search-attributes"]:
        added = asyncio.run(setup_search_attributes(settings))
        print(f"search attributes added: {added or 'none (all present)'}")
    elif args == ["stages"] and not settings.stages.simulated_stages:
        print("python -m worker stages: SIMULATED_STAGES names no stage to serve", file=sys.stderr)
        raise SystemExit(2)
    elif args in ([], ["stages"]):
        asyncio.run(run_until_signalled(settings, stages_only=bool(args)))
    else:
        print("usage: python -m worker [stages | setup-search-attributes]", file=sys.stderr)
        raise SystemExit(2)
