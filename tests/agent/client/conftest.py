"""Fixtures of the client tests: the whole stack per test on the session's dev server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.agent.client.stack import RunningStack, running_stack


@pytest.fixture
async def stack(
    temporal_dev_env: WorkflowEnvironment, database_url: str, redis_server_url: str
) -> AsyncIterator[RunningStack]:
    """Simulator, worker and API of this test."""
    async with running_stack(temporal_dev_env.client, database_url, redis_server_url) as s:
        yield s
