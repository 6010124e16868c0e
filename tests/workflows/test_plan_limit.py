"""The largest plan a task accepts is a setting: past it, a planner answer is asked again
(then the task fails with the reason) and a plan edit is refused by the resume validator.
"""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from agent.contract.breakpoints import ResumeAction
from agent.contract.errors import WorkflowErrorType
from agent.contract.task import MilestoneSpec, PlanEdit, ResumeRequest
from agent.events.types import BreakpointKind, EventType, TaskStatus
from tests.workflows.conftest import Engine
from tests.workflows.helpers import task_row, wait_paused
from workflows.task_workflow import MAX_PLAN_ATTEMPTS, FailureReason, TaskWorkflow


async def test_a_plan_past_the_limit_is_asked_again_then_fails_with_the_reason(
    engine: Engine,
) -> None:
    # Arrange: the simulated planner always answers five milestones.
    handle = await engine.start(
        "Write docs [milestones=5] [plan=sequential]", max_plan_milestones=3
    )

    # Act
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.FAILED
    assert result.failure_reason == FailureReason.INVALID_PLAN
    task = await task_row(engine, result.task_id)
    assert task.error is not None
    assert "5 milestones; a plan may have at most 3" in task.error
    events = await engine.events(result.task_id)
    invalid = [e for e in events if e.type == EventType.LLM_COMPLETE and e.agent == "planner"]
    assert len(invalid) == MAX_PLAN_ATTEMPTS


async def test_a_plan_edit_past_the_limit_is_refused_with_the_reason(engine: Engine) -> None:
    # Arrange
    handle = await engine.start(
        "Write docs [milestones=3] [plan=sequential]",
        breakpoints=[BreakpointKind.AFTER_PLAN],
        max_plan_milestones=4,
    )
    pause = await wait_paused(handle)
    too_many = PlanEdit(
        add=[MilestoneSpec(key="x1", title="one more"), MilestoneSpec(key="x2", title="two")]
    )

    # Act
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(
            TaskWorkflow.resume,
            ResumeRequest(
                breakpoint_id=pause.breakpoint_id, action=ResumeAction.CONTINUE, edits=too_many
            ),
        )
    await handle.execute_update(
        TaskWorkflow.resume,
        ResumeRequest(
            breakpoint_id=pause.breakpoint_id,
            action=ResumeAction.CONTINUE,
            edits=PlanEdit(add=[MilestoneSpec(key="x1", title="one more")]),
        ),
    )
    result = await handle.result()

    # Assert
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == WorkflowErrorType.INVALID_PLAN_EDIT
    assert "5 milestones; a plan may have at most 4" in str(cause)
    assert result.status == TaskStatus.COMPLETED
    assert result.milestones_passed == 4
