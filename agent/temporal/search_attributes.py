"""The task workflow's custom search attributes and the one policy for having them.

Search attributes make tasks legible in the Temporal UI (filter by status, user,
complexity, whether a person is needed, cost, current milestone, what it waits on), and the
API starts every task with them, so a namespace without them cannot run tasks at all.

The policy: whoever owns the Temporal server registers them (`ensure_search_attributes`:
`agent up` on a configured cluster, the tests, and the deploy's temporal-init job with the
same list); the long-running services only check (`check_search_attributes`) and refuse to
start naming each missing attribute, because registering from many replicas at once races
on SQL visibility stores and Temporal Cloud does not allow it to a namespace key.
"""

from __future__ import annotations

import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from agent.temporal.errors import SearchAttributesMissingError, TemporalStartupError

logger = structlog.get_logger(__name__)

TASK_STATUS = SearchAttributeKey.for_keyword("TaskStatus")
USER_ID = SearchAttributeKey.for_keyword("UserId")
COMPLEXITY = SearchAttributeKey.for_keyword("Complexity")
AWAITING_HUMAN = SearchAttributeKey.for_bool("AwaitingHuman")
COST_USD = SearchAttributeKey.for_float("CostUsd")
CURRENT_MILESTONE = SearchAttributeKey.for_keyword("CurrentMilestone")
WAITING_ON = SearchAttributeKey.for_keyword("WaitingOn")
"""What a task waits on: `llm:<model>` (a provider outage), `person` (a breakpoint), unset."""

SEARCH_ATTRIBUTES: dict[str, IndexedValueType.ValueType] = {
    TASK_STATUS.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    USER_ID.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    COMPLEXITY.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    AWAITING_HUMAN.name: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    COST_USD.name: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    CURRENT_MILESTONE.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    WAITING_ON.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
}
"""Custom search attributes of `TaskWorkflow`: name -> indexed value type."""

CLI_TYPE_NAMES: dict[IndexedValueType.ValueType, str] = {
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
    IndexedValueType.INDEXED_VALUE_TYPE_BOOL: "Bool",
    IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE: "Double",
    IndexedValueType.INDEXED_VALUE_TYPE_INT: "Int",
    IndexedValueType.INDEXED_VALUE_TYPE_TEXT: "Text",
    IndexedValueType.INDEXED_VALUE_TYPE_DATETIME: "Datetime",
}
"""Type names as the `temporal` CLI spells them."""


def search_attribute_cli_args() -> list[str]:
    """Arguments registering the search attributes with `temporal server start-dev`.

    Returns:
        `["--search-attribute", "TaskStatus=Keyword", ...]`.
    """
    args: list[str] = []
    for name, value_type in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={CLI_TYPE_NAMES[value_type]}"]
    return args


async def _search_attribute_problems(client: Client, namespace: str) -> dict[str, str] | None:
    """Attribute name -> what is wrong; None when the server cannot list them.

    Raises:
        TemporalStartupError: The namespace does not exist.
        RPCError: Any other failure to list.
    """
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise TemporalStartupError(
                f"Temporal namespace {namespace!r} does not exist (AGENT_TEMPORAL_NAMESPACE): "
                "create it with the temporal-init job or `temporal operator namespace create`"
            ) from exc
        # The time-skipping test server implements only AddSearchAttributes.
        if exc.status == RPCStatusCode.UNIMPLEMENTED:
            return None
        raise
    problems: dict[str, str] = {}
    for name, expected in SEARCH_ATTRIBUTES.items():
        actual = listed.custom_attributes.get(name)
        if actual is None:
            problems[name] = f"missing ({CLI_TYPE_NAMES[expected]})"
        elif actual != expected:
            problems[name] = (
                f"has type {CLI_TYPE_NAMES.get(actual, str(actual))}, "
                f"needs {CLI_TYPE_NAMES[expected]}"
            )
    return problems


async def check_search_attributes(client: Client, namespace: str | None = None) -> None:
    """Verify the namespace has every search attribute with its type; register nothing.

    For the API and the worker at start-up.

    Args:
        client: A connected client.
        namespace: Namespace to check; the client's by default.

    Raises:
        SearchAttributesMissingError: Naming each missing or mistyped attribute.
        TemporalStartupError: The namespace does not exist.
        RPCError: The server refused to list them (for example a Temporal Cloud API key
            without read access to the namespace).
    """
    namespace = namespace or client.namespace
    problems = await _search_attribute_problems(client, namespace)
    if problems is None:
        logger.warning("search_attributes_unverified", namespace=namespace)
        return
    if problems:
        raise SearchAttributesMissingError(namespace, problems)


async def ensure_search_attributes(client: Client, namespace: str | None = None) -> list[str]:
    """Register the missing search attributes, then verify that all exist.

    For whoever owns the server: `agent up`, the tests, one-shot init jobs. Safe to run
    concurrently: when another registrar won the race, the add fails but the verification
    still passes.

    Args:
        client: A connected client.
        namespace: Namespace to register in; the client's by default.

    Returns:
        Names of the attributes this call asked the server to add.

    Raises:
        SearchAttributesMissingError: Some are still missing or mistyped afterwards (the
            error of the failed add is its cause).
        TemporalStartupError: The namespace does not exist.
    """
    namespace = namespace or client.namespace
    problems = await _search_attribute_problems(client, namespace)
    to_add = {
        name: value_type
        for name, value_type in SEARCH_ATTRIBUTES.items()
        if problems is None or problems.get(name, "").startswith("missing")
    }
    if not to_add:
        return []
    add_error: RPCError | None = None
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=to_add)
        )
    except RPCError as exc:
        add_error = exc
        logger.info("search_attributes_add_failed", namespace=namespace, error=str(exc))
    if problems is None:
        # Unverifiable server (time-skipping test server): only "already there" is fine.
        if add_error is not None and add_error.status != RPCStatusCode.ALREADY_EXISTS:
            raise add_error
    else:
        remaining = await _search_attribute_problems(client, namespace)
        if remaining:
            raise SearchAttributesMissingError(namespace, remaining) from add_error
    logger.info("search_attributes_added", names=sorted(to_add), namespace=namespace)
    return sorted(to_add)
