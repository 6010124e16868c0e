"""A breakpoint nobody answers must end somewhere, never pause at the same place forever.

On the time-skipping server a breakpoint's timeout passes at once; a task whose default
action led back to the same breakpoint used to loop until its execution timeout.
"""

from __future__ import annotations

from uuid import UUID

import pytest

from agent.contract.breakpoints import ResumeAction
from agent.contract.task import Budget
from agent.events.types import BreakpointKind, EventType, MilestoneStatus, TaskStatus
from tests.workflows.conftest import Engine
from tests.workflows.helpers import Recorder, milestones

pytestmark = pytest.mark.asyncio(loop_scope="session")

TIMEOUT_SECONDS = 60.0


async def decisions(engine: Engine, task_id: UUID) -> list[tuple[str, str, bool]]:
    """The task's resume decisions as (kind, action, timed out), in order."""
    events = await engine.events(task_id)
    return [
        (e.details["kind"], e.details["action"], e.details["timed_out"])
        for e in events
        if e.type == EventType.BREAKPOINT_RESUMED
    ]


@pytest.mark.parametrize("default", [ResumeAction.CONTINUE, ResumeAction.RETRY])
async def test_budget_exhausted_timeout_aborts_instead_of_pausing_again(
    engine: Engine, record_history: Recorder, default: ResumeAction
) -> None:
    # Arrange: 5000 tokens run out before the task ends; nobody answers the pause.
    handle = await engine.start(
        "Write docs [milestones=3] [plan=sequential]",
        breakpoints=[BreakpointKind.BUDGET_EXHAUSTED],
        budget=Budget(max_tokens=5000),
        timeout_seconds=TIMEOUT_SECONDS,
        default_action=default,
    )

    # Act
    result = await handle.result()

    # Assert
    assert (result.status, result.failure_reason) == (TaskStatus.FAILED, "budget_exceeded")
    assert result.totals.tokens <= 5000
    assert await decisions(engine, result.task_id) == [("budget_exhausted", "abort", True)]
    events = await engine.events(result.task_id)
    hits = [e for e in events if e.type == EventType.BREAKPOINT_HIT]
    assert [h.details["default_action"] for h in hits] == ["abort"]  # what clients are shown
    assert events[-1].type == EventType.TASK_FAILED
    assert "nobody raised the budget" in events[-1].details["error"]
    await record_history(handle)


@pytest.mark.parametrize("kind", [BreakpointKind.AFTER_PLAN, BreakpointKind.AFTER_MILESTONE])
async def test_default_retry_that_comes_back_applies_once_then_fails(
    engine: Engine, record_history: Recorder, kind: BreakpointKind
) -> None:
    # Arrange: a retry after the plan (or a milestone) runs it again, then pauses there again.
    handle = await engine.start(
        "Write docs [milestones=1] [plan=sequential]",
        breakpoints=[kind],
        timeout_seconds=TIMEOUT_SECONDS,
        default_action=ResumeAction.RETRY,
    )

    # Act
    result = await handle.result()

    # Assert
    assert (result.status, result.failure_reason) == (TaskStatus.FAILED, "breakpoint_timed_out")
    assert await decisions(engine, result.task_id) == [
        (kind.value, "retry", True),
        (kind.value, "abort", True),
    ]
    events = await engine.events(result.task_id)
    hits = [e for e in events if e.type == EventType.BREAKPOINT_HIT]
    assert [h.details["default_action"] for h in hits] == ["retry", "abort"]
    if kind == BreakpointKind.AFTER_MILESTONE:
        rows = await milestones(engine, result.task_id)
        assert (rows["m1"].status, rows["m1"].attempts) == (MilestoneStatus.PASSED, 2)
    await record_history(handle)


async def test_default_retry_on_failure_still_applies_at_each_milestone(
    engine: Engine, record_history: Recorder
) -> None:
    # Arrange: each milestone fails its first two attempts; the timed-out retry passes.
    handle = await engine.start(
        "Write docs [milestones=2] [plan=sequential] [fail_first=2]",
        breakpoints=[BreakpointKind.ON_FAILURE],
        max_attempts=2,
        timeout_seconds=TIMEOUT_SECONDS,
        default_action=ResumeAction.RETRY,
    )

    # Act
    result = await handle.result()

    # Assert
    assert result.status == TaskStatus.COMPLETED
    assert await decisions(engine, result.task_id) == [
        ("on_failure", "retry", True),
        ("on_failure", "retry", True),
    ]
    rows = await milestones(engine, result.task_id)
    assert {k: m.attempts for k, m in rows.items()} == {"m1": 3, "m2": 3}
    await record_history(handle)
