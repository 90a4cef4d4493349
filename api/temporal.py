"""The gateway's Temporal client, connected on first use: the API starts, and serves what
needs no Temporal, while Temporal is down."""

from __future__ import annotations

import asyncio
import time

import structlog
from temporalio.client import Client
from temporalio.service import RetryConfig

import temporal_connect
from api.inflight import InFlight
from api.problems import TEMPORAL_UNAVAILABLE, DependencyUnavailable
from settings import TemporalSettings

CONNECT_TIMEOUT_SECONDS = 5.0
# After a failed connect, calls answer 503 at once for this long instead of connecting again.
FAILURE_CACHE_SECONDS = 1.5
# Once a connect has failed, a call waits at most this long for the next one (which goes on).
OUTAGE_WAIT_SECONDS = 0.5
# A call to an unreachable server is retried for at most about a second, then answered 503: the
# SDK's default (10 s of retries) would keep each request hanging that long during an outage.
GATEWAY_RETRY = RetryConfig(
    initial_interval_millis=100, max_interval_millis=400, max_elapsed_time_millis=1000
)
log = structlog.get_logger("api.temporal")


class TemporalConnector:
    """Connects once, on the first call that needs Temporal. Concurrent calls share one connect
    in flight. During an outage every call answers `DependencyUnavailable` within
    `OUTAGE_WAIT_SECONDS`: for `FAILURE_CACHE_SECONDS` after a failed connect at once, then
    while the next connect (one at a time) is under way."""

    def __init__(self, settings: TemporalSettings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._failed_at: float | None = None
        self._connects: InFlight[Client] = InFlight()

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        failed_at = self._failed_at
        if failed_at is not None and time.monotonic() - failed_at < FAILURE_CACHE_SECONDS:
            raise DependencyUnavailable(TEMPORAL_UNAVAILABLE)
        wait = None if failed_at is None else OUTAGE_WAIT_SECONDS
        try:
            async with asyncio.timeout(wait):
                client, _ = await self._connects.run("temporal", self._connect)
        except TimeoutError:
            raise DependencyUnavailable(TEMPORAL_UNAVAILABLE) from None
        return client

    async def _connect(self) -> Client:
        s = self._settings
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
                client = await temporal_connect.connect(s, retry_config=GATEWAY_RETRY)
        except (RuntimeError, OSError, TimeoutError) as exc:
            self._failed_at = time.monotonic()
            log.warning("temporal connect failed", address=s.address, error=str(exc))
            raise DependencyUnavailable(TEMPORAL_UNAVAILABLE) from None
        self._client, self._failed_at = client, None
        return client
