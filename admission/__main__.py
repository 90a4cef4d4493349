"""Operator command for admission leases: `python -m admission list | release <courseId>`.

    list               the epoch (when the last rebuild wrote it, or that it is missing and
                       starts are refused until a reconciler pass), then every live lease:
                       user, course, workflow id, run id, since, expiry
    release <courseId> free the lease held by `course-generation-<courseId>`

Reads REDIS_URL (default the local server) and REDIS_KEY_PREFIX through the settings tree.
Exit codes: 0 done, 1 no such lease, 2 bad usage or setting, 3 Redis unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from admission import GlobalHolder, Leases, LeaseStoreUnavailable, create_redis
from settings import settings_or_exit
from workflows.types import course_id_of, workflow_id_for


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m admission",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list every live lease")
    release = commands.add_parser("release", help="free the lease of one course's run")
    release.add_argument("course_id")
    return parser


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _line(lease: GlobalHolder) -> str:
    ids = (lease.user_id, course_id_of(lease.holder), lease.holder, lease.run_id or "-")
    return "\t".join((*ids, _iso(lease.since), _iso(lease.expires_at)))


async def _list(leases: Leases) -> int:
    epoch = await leases.epoch()
    if epoch is None:
        print("# epoch: missing (starts answer 503 until a reconciler pass rebuilds the leases)")
    else:
        print(f"# epoch: {_iso(epoch)} (written by the last full rebuild)")
    held = await leases.holders()
    print("user_id\tcourse_id\tworkflow_id\trun_id\tsince\texpires_at")
    for lease in held:
        print(_line(lease))
    return 0


async def _release(leases: Leases, course_id: str) -> int:
    holder = workflow_id_for(course_id)
    owners = [lease.user_id for lease in await leases.holders() if lease.holder == holder]
    if not owners:
        print(f"no lease held by {holder}", file=sys.stderr)
        return 1
    for user_id in owners:
        await leases.release(user_id, holder)
        print(f"released {holder} (user {user_id})")
    return 0


async def _run(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    redis = create_redis(settings.stores.redis_dsn)
    leases = Leases(redis, settings.stores.redis_key_prefix)
    try:
        if args.command == "release":
            return await _release(leases, args.course_id)
        return await _list(leases)
    except LeaseStoreUnavailable as exc:
        print(f"redis unavailable: {exc}", file=sys.stderr)
        return 3
    finally:
        await redis.aclose()


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(_run(_parser().parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
