"""Fixtures of the LLM layer's tests: a real simulator on a loopback port, a mock client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from unittest.mock import AsyncMock

import pytest
import pytest_asyncio

from agent.config import Settings
from agent.llm.client import LLMClient
from agent.llm.simulator.config import SimulatorConfig
from agent.llm.simulator.server import SimulatorServer
from agent.llm.types import LLMResponse, Usage

TEST_TIMEOUT_SECONDS = 10.0


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def simulator_server() -> AsyncIterator[SimulatorServer]:
    """The simulator served by uvicorn on a free loopback port, fast by default."""
    config = SimulatorConfig(
        port=0, ttft_ms=0, tps=0, output_tokens=60, hang_seconds=30, retry_after_seconds=2
    )
    async with SimulatorServer(config) as server:
        yield server


@pytest.fixture
def simulator_url(simulator_server: SimulatorServer) -> str:
    """OpenAI base URL (`http://127.0.0.1:<port>/v1`) of the running simulator."""
    return simulator_server.base_url


@pytest.fixture
def llm_settings() -> Settings:
    """Settings for LLM tests, independent of the environment's LLM configuration."""
    return Settings(
        _env_file=None,
        llm_base_url=None,
        llm_api_key=None,
        llm_timeout_seconds=TEST_TIMEOUT_SECONDS,
        model_prices={},
        model_routes={},
    )


@pytest_asyncio.fixture(loop_scope="session")
async def llm_client(llm_settings: Settings, simulator_url: str) -> AsyncIterator[LLMClient]:
    """An `LLMClient` talking to the simulator over real HTTP."""
    async with LLMClient(llm_settings, base_url=simulator_url) as client:
        yield client


@pytest.fixture
def mock_llm_client() -> AsyncMock:
    """A mock `LLMClient` for pure unit tests of callers (the guide's shape).

    `complete` returns content "test response", usage 10 in / 20 out, cost 0.001.
    """
    mock = AsyncMock(spec=LLMClient)
    mock.complete.return_value = LLMResponse(
        content="test response",
        usage=Usage(input_tokens=10, output_tokens=20),
        cost_usd=0.001,
        model="gpt-4o-mini",
        finish_reason="stop",
    )
    return mock
