"""Observability fixtures: the API tests' app, users and worker, and an in-memory tracer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agent.llm.simulator.config import SimulatorConfig
from agent.llm.simulator.server import SimulatorServer
from agent.observability.tracing import install_tracing, uninstall_tracing
from tests.api.conftest import (  # noqa: F401 (fixtures shared with the API tests)
    alice,
    api_factory,
    api_settings,
    task_queue,
    temporal_client,
)


@pytest.fixture(scope="session")
async def simulator() -> AsyncIterator[SimulatorServer]:
    """The LLM simulator on a loopback port, answering at once."""
    config = SimulatorConfig(port=0, ttft_ms=0, tps=0, output_tokens=40, hang_seconds=30)
    async with SimulatorServer(config) as server:
        yield server


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test only, every finished span kept in memory.

    Install before the app and the worker are built: they instrument only when it is on.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    install_tracing(provider)
    try:
        yield exporter
    finally:
        uninstall_tracing()
        provider.shutdown()
