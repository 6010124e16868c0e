"""Tool calls are counted, timed and traced: real tasks calling `mcp-server-time` over stdio.

The counters are process-wide (one registry per process), so each test reads them before
and after its task and asserts the difference.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agent.contract.breakpoints import ResumeAction
from agent.contract.task import ResumeRequest
from agent.events.types import TaskStatus
from agent.observability.metrics import project_metrics
from agent.observability.tracing import install_tracing, uninstall_tracing
from tests.workflows.conftest import Engine
from tests.workflows.helpers import wait_paused
from tests.workflows.test_tools import ONE_MILESTONE, UTC_NOW
from workflows.task_workflow import TaskWorkflow

CALLS = "agent_tool_calls_total"
SECONDS = "agent_tool_call_duration_seconds_count"


def sample(name: str, **labels: str) -> float:
    """The current value of one series of this process's project metrics (0 when absent)."""
    value = project_metrics().registry.get_sample_value(name, labels)
    return value or 0.0


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test only, every finished span kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    install_tracing(provider)
    try:
        yield exporter
    finally:
        uninstall_tracing()
        provider.shutdown()


async def test_completed_and_rejected_calls_are_counted_timed_and_traced(
    tool_engine: Engine, spans: InMemorySpanExporter
) -> None:
    # Arrange: one call that runs, one of a tool no server offers, one with broken JSON.
    goal = (
        f"Clock and nonsense {ONE_MILESTONE} {UTC_NOW} [tool=nope.nothing {{}}] "
        "[tool_bad_json=time.get_current_time]"
    )
    time_labels = {"server": "time", "tool": "get_current_time"}
    completed_before = sample(CALLS, **time_labels, outcome="completed")
    rejected_before = sample(CALLS, **time_labels, outcome="rejected")
    unknown_before = sample(CALLS, server="unknown", tool="unknown", outcome="rejected")
    timed_before = sample(SECONDS, **time_labels)

    # Act
    handle = await tool_engine.start(goal)
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    assert sample(CALLS, **time_labels, outcome="completed") - completed_before == 1
    assert sample(CALLS, **time_labels, outcome="rejected") - rejected_before == 1
    assert sample(CALLS, server="unknown", tool="unknown", outcome="rejected") - unknown_before == 1
    assert sample(SECONDS, **time_labels) - timed_before == 1  # only the call that ran
    tool_spans = [s for s in spans.get_finished_spans() if s.name.startswith("execute_tool")]
    assert [s.name for s in tool_spans] == ["execute_tool time.get_current_time"]
    (span,) = tool_spans
    assert span.attributes is not None
    assert span.attributes["agent.tool.server"] == "time"
    assert span.attributes["agent.tool.name"] == "get_current_time"
    assert span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert span.attributes["agent.tool.is_error"] is False
    assert span.status.status_code != StatusCode.ERROR


async def test_a_denied_call_is_counted_once_and_never_timed(approval_engine: Engine) -> None:
    # Arrange
    labels = {"server": "time", "tool": "get_current_time"}
    denied_before = sample(CALLS, **labels, outcome="denied")
    timed_before = sample(SECONDS, **labels)
    handle = await approval_engine.start(f"Time please {ONE_MILESTONE} {UTC_NOW}")
    pause = await wait_paused(handle)

    # Act
    await handle.execute_update(
        TaskWorkflow.resume,
        ResumeRequest(breakpoint_id=pause.breakpoint_id, action=ResumeAction.DENY),
    )
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    assert sample(CALLS, **labels, outcome="denied") - denied_before == 1
    assert sample(SECONDS, **labels) == timed_before
