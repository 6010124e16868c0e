"""What the Temporal UI shows of a task, read from a real dev server (which has visibility).

Search attributes (`describe()`), activity summaries (history user metadata) and the
current details table (`__temporal_workflow_metadata`, what the UI's details pane reads)
at a breakpoint and at the end.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle
from temporalio.common import TypedSearchAttributes

from agent.contract.task import TaskResult
from agent.events.types import BreakpointKind, EventType, TaskComplexity, TaskStatus
from agent.temporal import (
    AWAITING_HUMAN,
    COMPLEXITY,
    COST_USD,
    CURRENT_MILESTONE,
    TASK_STATUS,
    USER_ID,
)
from tests.workflows.conftest import Engine
from tests.workflows.helpers import paused_at, resume
from workflows.task_workflow import TaskWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

Handle = WorkflowHandle[TaskWorkflow, TaskResult]
METADATA_QUERY = "__temporal_workflow_metadata"


def search_attributes(attrs: TypedSearchAttributes) -> dict[str, Any]:
    """The task workflow's custom search attributes, by name (absent ones left out)."""
    values: dict[str, Any] = {}
    for key in (TASK_STATUS, USER_ID, COMPLEXITY, AWAITING_HUMAN, COST_USD, CURRENT_MILESTONE):
        value = attrs.get(key)
        if value is not None:
            values[key.name] = value
    return values


async def current_details(handle: Handle) -> str:
    metadata: WorkflowMetadata = await handle.query(METADATA_QUERY, result_type=WorkflowMetadata)
    return str(metadata.current_details)


async def activity_summaries(engine: Engine, handle: Handle) -> dict[str, list[str]]:
    """Summaries of the scheduled activities in history, by activity type, in order."""
    converter = engine.client.data_converter.payload_converter
    found: dict[str, list[str]] = {}
    async for event in handle.fetch_history_events():
        if event.event_type != HistoryEventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        name = event.activity_task_scheduled_event_attributes.activity_type.name
        summary = event.user_metadata.summary
        text = converter.from_payload(summary, str) if summary.data else ""
        found.setdefault(name, []).append(text)
    return found


async def test_search_attributes_summaries_and_details_at_a_breakpoint_and_at_the_end(
    dev_engine: Engine,
) -> None:
    engine = dev_engine
    # Arrange: pause before every milestone; the second pause is the one inspected.
    handle = await engine.start(
        "Write a four part guide [milestones=4] [plan=sequential]",
        complexity=TaskComplexity.SIMPLE,
        breakpoints=[BreakpointKind.BEFORE_MILESTONE],
    )
    task_id = UUID(handle.id.removeprefix("task-"))
    await resume(handle, await paused_at(handle, "m1"))

    # Act: at the breakpoint before m2
    pause = await paused_at(handle, "m2")
    at_pause = await handle.describe()
    progress = await handle.query(TaskWorkflow.progress)
    details_at_pause = await current_details(handle)
    await resume(handle, pause)
    for key in ("m3", "m4"):
        await resume(handle, await paused_at(handle, key))
    result = await handle.result()
    at_end = await handle.describe()
    details_at_end = await current_details(handle)
    summaries = await activity_summaries(engine, handle)

    # Assert: search attributes at the breakpoint
    assert result.status == TaskStatus.COMPLETED
    assert progress.totals.cost_usd > 0
    assert search_attributes(at_pause.typed_search_attributes) == {
        "TaskStatus": "paused",
        "UserId": str(engine.user_id),
        "Complexity": "simple",
        "AwaitingHuman": True,
        "CostUsd": pytest.approx(round(progress.totals.cost_usd, 6)),
        "CurrentMilestone": "m2",
    }
    # ... and at the end (no milestone runs any more: the attribute is removed).
    assert result.totals.cost_usd > progress.totals.cost_usd
    assert search_attributes(at_end.typed_search_attributes) == {
        "TaskStatus": "completed",
        "UserId": str(engine.user_id),
        "Complexity": "simple",
        "AwaitingHuman": False,
        "CostUsd": pytest.approx(round(result.totals.cost_usd, 6)),
    }
    # Activity summaries read like `M2/4 · execute · <model> · attempt 1`.
    events = await engine.events(task_id)
    models = {
        e.agent: e.details["model"]
        for e in events
        if e.type == EventType.AGENT_STARTED and e.agent is not None
    }
    worker, verifier = models["worker"], models["verifier"]
    assert summaries["execute"] == [f"M{i}/4 · execute · {worker} · attempt 1" for i in range(1, 5)]
    assert summaries["verify"] == [f"M{i}/4 · verify · {verifier} · attempt 1" for i in range(1, 5)]
    assert summaries["plan"] == [f"plan · {models['planner']} · attempt 1"]
    assert summaries["summarise"] == [f"summarise · {models['summariser']}"]
    # The current details show the progress table.
    assert details_at_pause.splitlines()[0].startswith(f"**paused** at `{pause.breakpoint_id}`")
    assert "| 1 | m1 | passed | 1 |" in details_at_pause.splitlines()
    assert "| 2 | m2 | pending | 0 |" in details_at_pause.splitlines()
    assert "| 4 | m4 | pending | 0 |" in details_at_pause.splitlines()
    end_lines = details_at_end.splitlines()
    assert end_lines[0].startswith("**completed** · ")
    assert f"{result.totals.input_tokens}+{result.totals.output_tokens} tokens" in end_lines[0]
    assert [line for line in end_lines if line.startswith("| ") and "| passed |" in line] == [
        f"| {i} | m{i} | passed | 1 |" for i in range(1, 5)
    ]
