"""The one way every process connects to Temporal: address, namespace, API key and mTLS, and
Temporal's tracing interceptor (a worker built from the client inherits it)."""

from __future__ import annotations

import time
from datetime import timedelta

from temporalio.api.enums.v1 import IndexedValueType, TaskQueueKind, TaskQueueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig, TLSConfig

import observability
from settings import TemporalSettings
from workflows.search_attributes import NAMES as SEARCH_ATTRIBUTES

# A polling worker renews its long poll at least once a minute; the server keeps listing a
# worker that has gone for a few minutes more.
POLLER_SEEN_WITHIN_SECONDS = 70.0


def tls_config(s: TemporalSettings) -> TLSConfig | bool:
    """mTLS from the certificate files; plain TLS for an API key (Temporal Cloud); else none."""
    if not (s.tls_cert or s.tls_ca):
        return bool(s.api_key)
    return TLSConfig(
        server_root_ca_cert=s.tls_ca.read_bytes() if s.tls_ca else None,
        client_cert=s.tls_cert.read_bytes() if s.tls_cert else None,
        client_private_key=s.tls_key.read_bytes() if s.tls_key else None,
    )


async def connect(
    s: TemporalSettings,
    address: str | None = None,
    *,
    runtime: Runtime | None = None,
    retry_config: RetryConfig | None = None,
) -> Client:
    """A client for `address` (default `TEMPORAL_ADDRESS`) in `TEMPORAL_NAMESPACE`, traced, on
    `runtime` (the worker's carries its Prometheus endpoint; default: the process default);
    `retry_config` bounds how long a call retries an unreachable server (default: the SDK's
    10 s)."""
    return await Client.connect(
        address or s.address,
        namespace=s.namespace,
        api_key=s.api_key,
        tls=tls_config(s),
        interceptors=observability.temporal_interceptors(),
        runtime=runtime,
        retry_config=retry_config,
    )


async def missing_search_attributes(client: Client) -> list[str]:
    """Our search attributes the server does not list yet (in the client's namespace)."""
    response = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    return [name for name in SEARCH_ATTRIBUTES if name not in response.custom_attributes]


async def add_missing_search_attributes(client: Client) -> list[str]:
    """Register our missing search attributes as Keyword (idempotent); returns those added."""
    missing = await missing_search_attributes(client)
    if missing:
        keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=client.namespace, search_attributes=dict.fromkeys(missing, keyword)
            )
        )
    return missing


async def live_pollers(
    client: Client,
    task_queue: str,
    task_queue_type: TaskQueueType.ValueType,
    *,
    seen_within_seconds: float = POLLER_SEEN_WITHIN_SECONDS,
) -> int:
    """How many pollers of `task_queue` the server saw within the last `seen_within_seconds`."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=task_queue_type,
        )
    )
    since = time.time() - seen_within_seconds
    return sum(1 for poller in response.pollers if poller.last_access_time.ToSeconds() >= since)


async def approximate_backlog(client: Client, task_queue: str, timeout: timedelta) -> int:
    """Activity tasks waiting in `task_queue`'s backlog, from Temporal's task-queue statistics
    (approximate: the server refreshes them every few seconds)."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            report_stats=True,
        ),
        timeout=timeout,
    )
    return max(0, response.stats.approximate_backlog_count)
