"""A fresh Temporal namespace per test, for state that is per namespace (schedules, attributes)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client


async def new_namespace(client: Client, prefix: str) -> str:
    """Register a namespace with a unique name (one day of retention) and return its name."""
    namespace = f"{prefix}-{uuid.uuid4().hex[:8]}"
    retention = Duration()
    retention.FromTimedelta(timedelta(days=1))
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=retention)
    )
    return namespace
