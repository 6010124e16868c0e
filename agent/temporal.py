"""Temporal client factory and the task workflow's custom search attributes.

Every client is built with `pydantic_data_converter`, so Pydantic models cross the wire as
themselves. Search attributes make tasks legible in the Temporal UI (filter by status,
user, complexity, whether a person is needed, cost, current milestone).
"""

from __future__ import annotations

from typing import Any

import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from agent.config import Settings

logger = structlog.get_logger(__name__)

DEFAULT_TEMPORAL_ADDRESS = "localhost:7233"

TASK_STATUS = SearchAttributeKey.for_keyword("TaskStatus")
USER_ID = SearchAttributeKey.for_keyword("UserId")
COMPLEXITY = SearchAttributeKey.for_keyword("Complexity")
AWAITING_HUMAN = SearchAttributeKey.for_bool("AwaitingHuman")
COST_USD = SearchAttributeKey.for_float("CostUsd")
CURRENT_MILESTONE = SearchAttributeKey.for_keyword("CurrentMilestone")

SEARCH_ATTRIBUTES: dict[str, IndexedValueType.ValueType] = {
    TASK_STATUS.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    USER_ID.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    COMPLEXITY.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    AWAITING_HUMAN.name: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    COST_USD.name: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    CURRENT_MILESTONE.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
}
"""Custom search attributes of `TaskWorkflow`: name -> indexed value type."""

_CLI_TYPE_NAMES: dict[IndexedValueType.ValueType, str] = {
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
    IndexedValueType.INDEXED_VALUE_TYPE_BOOL: "Bool",
    IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE: "Double",
    IndexedValueType.INDEXED_VALUE_TYPE_INT: "Int",
    IndexedValueType.INDEXED_VALUE_TYPE_TEXT: "Text",
    IndexedValueType.INDEXED_VALUE_TYPE_DATETIME: "Datetime",
}


def search_attribute_cli_args() -> list[str]:
    """Arguments registering the search attributes with `temporal server start-dev`.

    Returns:
        `["--search-attribute", "TaskStatus=Keyword", ...]`.
    """
    args: list[str] = []
    for name, value_type in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={_CLI_TYPE_NAMES[value_type]}"]
    return args


async def ensure_search_attributes(client: Client, namespace: str | None = None) -> list[str]:
    """Register the missing custom search attributes through the operator service.

    Works against the dev server, the time-skipping test server and self-hosted clusters
    (Temporal Cloud manages them in its console instead).

    Args:
        client: A connected client.
        namespace: Namespace to register in; the client's by default.

    Returns:
        Names of the attributes that were added.
    """
    namespace = namespace or client.namespace
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        known = set(existing.custom_attributes)
    except RPCError as exc:
        # The time-skipping test server implements only AddSearchAttributes.
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        known = set()
    missing = {
        name: value_type for name, value_type in SEARCH_ATTRIBUTES.items() if name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
        logger.info("search_attributes_added", names=sorted(missing), namespace=namespace)
    return sorted(missing)


async def connect_temporal(settings: Settings, **kwargs: Any) -> Client:
    """Connect to the configured Temporal server with the Pydantic data converter.

    Args:
        settings: Uses `temporal_address` (default `localhost:7233`) and
            `temporal_namespace`.
        **kwargs: Extra arguments for `Client.connect`.

    Returns:
        A connected client.
    """
    address = settings.temporal_address or DEFAULT_TEMPORAL_ADDRESS
    client = await Client.connect(
        address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        **kwargs,
    )
    logger.info("temporal_connected", address=address, namespace=settings.temporal_namespace)
    return client
