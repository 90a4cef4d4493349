"""The gateway's Temporal client, connected on first use: the API starts, and serves what
needs no Temporal, while Temporal is down."""

from __future__ import annotations

import asyncio

import structlog
from temporalio.client import Client

import temporal_connect
from api.problems import TEMPORAL_UNAVAILABLE, DependencyUnavailable
from settings import TemporalSettings

log = structlog.get_logger("api.temporal")


class TemporalConnector:
    """Connects once, on the first call that needs Temporal; a failed connect is retried by
    the next call and answers `DependencyUnavailable` meanwhile."""

    def __init__(self, settings: TemporalSettings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                self._client = await self._connect()
        return self._client

    async def _connect(self) -> Client:
        s = self._settings
        try:
            return await asyncio.wait_for(
                temporal_connect.connect(s),
                timeout=5,
            )
        except (RuntimeError, OSError, TimeoutError) as exc:
            log.warning("temporal connect failed", address=s.address, error=str(exc))
            raise DependencyUnavailable(TEMPORAL_UNAVAILABLE) from None
