"""Fixtures of the client tests: a Temporal dev server and the whole stack per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from agent.stack.temporal_server import temporal_binary
from agent.temporal import ensure_search_attributes
from tests.agent.client.stack import RunningStack, running_stack


@pytest.fixture(scope="session")
async def client_temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A Temporal dev server for the client tests."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(temporal_binary()),
    )
    await ensure_search_attributes(env.client)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
async def stack(
    client_temporal_env: WorkflowEnvironment, database_url: str, redis_server_url: str
) -> AsyncIterator[RunningStack]:
    """Simulator, worker and API of this test."""
    async with running_stack(client_temporal_env.client, database_url, redis_server_url) as s:
        yield s
