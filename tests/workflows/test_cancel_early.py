"""A cancel that lands while the task's first (local) activity runs still ends the task."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest
from temporalio.client import WorkflowFailureError

from agent.events.types import EventType, TaskStatus
from tests.workflows.conftest import Engine

CANCEL_TIMEOUT_SECONDS = 60


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
async def test_cancel_right_after_start_ends_cancelled(engine: Engine, delay: float) -> None:
    # Arrange
    handle = await engine.start("Quick one [milestones=2] [tps=20] [output_tokens=2000]")
    task_id = UUID(handle.id.removeprefix("task-"))
    await asyncio.sleep(delay)

    # Act
    await handle.cancel()
    async with asyncio.timeout(CANCEL_TIMEOUT_SECONDS):
        with pytest.raises(WorkflowFailureError):
            await handle.result()

    # Assert
    events = await engine.events(task_id)
    assert events[-1].type == EventType.TASK_CANCELLED
    assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
    assert TaskStatus.CANCELLED.value == events[-1].status
