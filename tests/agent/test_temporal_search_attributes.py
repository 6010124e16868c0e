"""The search-attribute policy against a real dev server: check names what is missing,
ensure registers (also when several registrars race) and then verifies."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from agent.temporal import (
    SEARCH_ATTRIBUTES,
    SearchAttributesMissingError,
    TemporalStartupError,
    check_search_attributes,
    ensure_search_attributes,
)
from tests.namespaces import new_namespace


async def _new_namespace(client: Client) -> str:
    return await new_namespace(client, "sa")


async def test_check_names_every_missing_attribute(temporal_dev_env: WorkflowEnvironment) -> None:
    namespace = await _new_namespace(temporal_dev_env.client)
    with pytest.raises(SearchAttributesMissingError) as caught:
        await check_search_attributes(temporal_dev_env.client, namespace)
    assert set(caught.value.problems) == set(SEARCH_ATTRIBUTES)
    assert "AwaitingHuman missing (Bool)" in str(caught.value)
    assert "CostUsd missing (Double)" in str(caught.value)


async def test_concurrent_registrars_all_succeed_and_check_passes(
    temporal_dev_env: WorkflowEnvironment,
) -> None:
    namespace = await _new_namespace(temporal_dev_env.client)
    results = await asyncio.gather(
        *(ensure_search_attributes(temporal_dev_env.client, namespace) for _ in range(3))
    )
    assert any(set(added) == set(SEARCH_ATTRIBUTES) for added in results)
    await check_search_attributes(temporal_dev_env.client, namespace)
    assert await ensure_search_attributes(temporal_dev_env.client, namespace) == []


async def test_a_wrongly_typed_attribute_is_named(temporal_dev_env: WorkflowEnvironment) -> None:
    client = temporal_dev_env.client
    namespace = await _new_namespace(client)
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=namespace,
            search_attributes={"CostUsd": IndexedValueType.INDEXED_VALUE_TYPE_INT},
        )
    )
    with pytest.raises(SearchAttributesMissingError) as caught:
        await ensure_search_attributes(client, namespace)
    assert caught.value.problems == {"CostUsd": "has type Int, needs Double"}


async def test_missing_namespace_names_the_setting(temporal_dev_env: WorkflowEnvironment) -> None:
    with pytest.raises(TemporalStartupError, match="AGENT_TEMPORAL_NAMESPACE"):
        await check_search_attributes(temporal_dev_env.client, "no-such-namespace")
