"""A planner whose every answer is an invalid plan fails the task cleanly."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from agent.db.models import Milestone, Task
from agent.events.types import AgentRole, EventType, TaskStatus
from tests.recording_simulator import recording_simulator
from tests.workflows.conftest import EngineFactory
from workflows.task_workflow import MAX_PLAN_ATTEMPTS, FailureReason

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_planner_failing_every_attempt_fails_the_task_with_invalid_plan(
    engine_factory: EngineFactory,
) -> None:
    async with (
        recording_simulator() as sim,
        engine_factory(llm_base_url=sim.base_url) as engine,
    ):
        # Arrange: every planner answer has a dependency cycle.
        handle = await engine.start(
            "Write docs [milestones=3] [plan=sequential] [fault=invalid_plan] [invalid=cycle]"
        )

        # Act
        result = await handle.result()

        # Assert
        assert result.status == TaskStatus.FAILED
        assert result.failure_reason == FailureReason.INVALID_PLAN
        assert result.failure_reason == "invalid_plan"
        async with engine.session_manager.session() as session:
            task = await session.get(Task, result.task_id)
            stored = list(
                (
                    await session.execute(
                        select(Milestone).where(Milestone.task_id == result.task_id)
                    )
                ).scalars()
            )
        assert task is not None
        assert (task.status, task.failure_reason) == (TaskStatus.FAILED, "invalid_plan")
        assert task.error is not None
        assert "cycle" in task.error
        assert stored == []
        events = await engine.events(result.task_id)
        assert events[-1].type == EventType.TASK_FAILED
        assert events[-1].details["reason"] == "invalid_plan"
        assert "cycle" in events[-1].details["error"]
        assert not any(e.type == EventType.MILESTONE_STATUS_CHANGED for e in events)
        planner_calls = sim.calls(AgentRole.PLANNER)
        assert len(planner_calls) == MAX_PLAN_ATTEMPTS
        # Each re-ask tells the planner why its previous plan was rejected.
        assert "Your plan was rejected" not in planner_calls[0].prompt
        assert all("Your plan was rejected" in c.prompt for c in planner_calls[1:])
        assert sim.calls(AgentRole.WORKER) == []
        assert sim.calls(AgentRole.VERIFIER) == []
