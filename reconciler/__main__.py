"""`python -m reconciler once`: one reconcile pass in this process, then a table of repairs.

Reads the same settings as `python -m worker` (DATABASE_URL, REDIS_URL, REDIS_KEY_PREFIX,
TEMPORAL_*, RECONCILE_GRACE_SECONDS, STUCK_AFTER_SECONDS, …). It may run beside the Schedule's
passes: every repair is idempotent. Exit codes: 0 done, 2 bad usage or setting, 3 a store was
unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import temporal_connect
from activities.types import ReconcileSummary
from admission import LeaseStoreUnavailable, create_redis
from db.errors import DatabaseUnavailable
from db.pool import create_pool
from reconciler.repairs import counts, table
from reconciler.wiring import build_reconciler
from settings import Settings, settings_or_exit
from telemetry import configure_logging


def _parser() -> argparse.ArgumentParser:
    """One command today (`once`); a positional choice keeps `python -m reconciler` a usage
    error (exit 2) rather than a silent pass."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        "python -m reconciler", description=__doc__, formatter_class=raw
    )
    parser.add_argument("command", choices=["once"], help="once: run one pass now, print repairs")
    return parser


async def run_once(settings: Settings) -> ReconcileSummary:
    stores = settings.stores
    pool = await create_pool(stores.database_dsn, min_size=1, max_size=4)
    redis = create_redis(stores.redis_dsn)
    try:
        client = await temporal_connect.connect(settings.temporal)
        return await build_reconciler(settings, pool, redis, client).run_pass()
    finally:
        await redis.aclose()
        await pool.close()


def report(summary: ReconcileSummary) -> str:
    totals = ", ".join(f"{kind} {n}" for kind, n in sorted(counts(summary.repairs).items()))
    epoch = "written" if summary.epoch_written else "NOT written (the store changed meanwhile)"
    return "\n".join(
        [
            table(summary.repairs),
            f"{len(summary.repairs)} repair(s){': ' + totals if totals else ''};"
            f" {summary.courses} active course(s), {summary.leases} lease(s) read;"
            f" epoch {epoch}",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    _parser().parse_args(argv)
    settings = settings_or_exit()
    log = settings.log  # log lines (one per repair) go to stderr; the table to stdout
    configure_logging(log.level, log.format, log.environment, settings.version, stream=sys.stderr)
    try:
        summary = asyncio.run(run_once(settings))
    except (LeaseStoreUnavailable, DatabaseUnavailable, OSError, RuntimeError) as exc:
        print(f"store unavailable: {exc}", file=sys.stderr)
        return 3
    print(report(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
