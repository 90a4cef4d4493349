"""The one way every process connects to Temporal: address, namespace, API key and mTLS."""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import TLSConfig

from settings import TemporalSettings
from workflows.search_attributes import NAMES as SEARCH_ATTRIBUTES


def tls_config(s: TemporalSettings) -> TLSConfig | bool:
    """mTLS from the certificate files; plain TLS for an API key (Temporal Cloud); else none."""
    if not (s.tls_cert or s.tls_ca):
        return bool(s.api_key)
    return TLSConfig(
        server_root_ca_cert=s.tls_ca.read_bytes() if s.tls_ca else None,
        client_cert=s.tls_cert.read_bytes() if s.tls_cert else None,
        client_private_key=s.tls_key.read_bytes() if s.tls_key else None,
    )


async def connect(s: TemporalSettings, address: str | None = None) -> Client:
    """A client for `address` (default `TEMPORAL_ADDRESS`) in `TEMPORAL_NAMESPACE`."""
    return await Client.connect(
        address or s.address, namespace=s.namespace, api_key=s.api_key, tls=tls_config(s)
    )


async def missing_search_attributes(client: Client) -> list[str]:
    """Our search attributes the server does not list yet (in the client's namespace)."""
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return [name for name in SEARCH_ATTRIBUTES if name not in response.custom_attributes]
