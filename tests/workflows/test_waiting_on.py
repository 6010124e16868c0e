"""`WaitingOn`: what a task waits on, as the Temporal UI and visibility queries see it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType as HistoryEventType
from temporalio.client import WorkflowHandle

from agent.events.types import BreakpointKind, EventType, TaskStatus
from agent.temporal import WAITING_ON
from tests.workflows.conftest import Engine
from tests.workflows.helpers import Recorder

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def waiting_on_values(handle: WorkflowHandle[Any, Any]) -> list[str | None]:
    """Every `WaitingOn` value the workflow upserted, in order (None: unset)."""
    values: list[str | None] = []
    async for event in handle.fetch_history_events():
        if event.event_type != HistoryEventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            continue
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
        payload = fields.indexed_fields.get(WAITING_ON.name)
        if payload is None:
            continue
        decoded = json.loads(payload.data) if payload.data else None
        values.append(decoded or None)
    return values


async def test_waiting_on_shows_the_person_then_the_provider(
    engine: Engine, record_history: Recorder
) -> None:
    # Arrange: a breakpoint after the plan (nobody answers: its timeout continues), then
    # the worker's provider fails twice before answering.
    handle = await engine.start(
        "Plan a shed [milestones=1][fault=500][fault_role=worker][fault_count=2]",
        breakpoints=[BreakpointKind.AFTER_PLAN],
        timeout_seconds=60.0,
    )

    # Act
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    events = await engine.events(result.task_id)
    waiting = [e for e in events if e.type == EventType.LLM_WAITING]
    assert len(waiting) == 1
    model = waiting[0].details["model"]
    assert await waiting_on_values(handle) == ["person", None, f"llm:{model}", None]
    await record_history(handle)


async def test_a_task_that_never_waits_never_sets_waiting_on(engine: Engine) -> None:
    handle = await engine.start("Plan a bench [milestones=1]")

    result = await handle.result()

    assert result.status == TaskStatus.COMPLETED
    assert await waiting_on_values(handle) == []
