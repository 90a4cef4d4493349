"""The gateway's Temporal client, connected on first use (DESIGN §3: created lazily)."""

from __future__ import annotations

import asyncio

import structlog
from temporalio.client import Client
from temporalio.service import TLSConfig

from api.problems import DependencyUnavailable
from settings import TemporalSettings

log = structlog.get_logger("api.temporal")


class TemporalConnector:
    """Connects once, on the first call that needs Temporal; a failed connect is retried by
    the next call and answers `DependencyUnavailable` meanwhile."""

    def __init__(self, settings: TemporalSettings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> Client | None:
        return self._client

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
                Client.connect(s.address, namespace=s.namespace, api_key=s.api_key, tls=_tls(s)),
                timeout=5,
            )
        except (RuntimeError, OSError, TimeoutError) as exc:
            log.warning("temporal connect failed", address=s.address, error=str(exc))
            raise DependencyUnavailable("temporal is unavailable") from None


def _tls(s: TemporalSettings) -> TLSConfig | bool:
    if not (s.tls_cert or s.tls_ca):
        return bool(s.api_key)
    return TLSConfig(
        server_root_ca_cert=s.tls_ca.read_bytes() if s.tls_ca else None,
        client_cert=s.tls_cert.read_bytes() if s.tls_cert else None,
        client_private_key=s.tls_key.read_bytes() if s.tls_key else None,
    )
