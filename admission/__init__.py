"""Admission leases: how many generations each user has running, kept in Redis.

A lease is a member of the user's sorted set and of one global sorted set, scored by its
expiry; its holder is the run's workflow id. Three hashes keep each holder's first admission
time (`since`), its user (`owner`) and the run that holds it (`run`: start time and run id),
so a release frees only its own run's lease and an old run's late reserve is refused. Every
key carries the `{adm}` hash tag, so a script that touches a user's set and the global set
also runs on Redis Cluster.

The scripts in `lua/` are registered once per client and run with EVALSHA (redis-py's
`Script` reloads them on NOSCRIPT). A Redis script cannot load another one, so what they
share (`lua/common.lua`: the clock that falls back to Redis `TIME` when the caller passes no
`now`, the pruning of expired members, the reply of holders) is prepended to each script
when it is read.

Lost state is detected, never trusted: an epoch key (same hash tag) is written only at the end
of a full rebuild by the reconciler; while it is missing (Redis restarted empty, a new prefix)
`reserve` and `usage` raise `LeaseEpochMissing`, so nothing is admitted or refused on leases
that may be incomplete. The reconciler reads leases a ZSCAN page at a time and restores those
of open runs.

Used by the admission activities, the gateway, the reconciler and the operator command
`python -m admission list | release <courseId>`.
"""

from admission.store import (
    GlobalHolder,
    Holder,
    LeaseEpochMissing,
    LeaseKeys,
    Leases,
    LeaseStoreUnavailable,
    ReserveResult,
    RunRef,
    create_redis,
    holder_info,
)

__all__ = [
    "GlobalHolder",
    "Holder",
    "LeaseEpochMissing",
    "LeaseKeys",
    "LeaseStoreUnavailable",
    "Leases",
    "ReserveResult",
    "RunRef",
    "create_redis",
    "holder_info",
]
