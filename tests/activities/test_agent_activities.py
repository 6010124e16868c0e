"""Agent activities are idempotent: a retry after the commit returns the same result."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.agent_activities import AgentActivities
from activities.models import BudgetRemaining, ExecuteInput, ExecuteOutcome, PlanInput
from agent.contract.errors import WorkflowErrorType
from agent.db.models import Event, Milestone
from agent.db.session import DatabaseSessionManager
from agent.llm.client import LLMClient
from agent.llm.simulator.server import SimulatorServer
from agent.repositories.tasks import TaskRepository
from agent.repositories.users import UserRepository
from tests.workflows.conftest import engine_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _event_count(manager: DatabaseSessionManager) -> int:
    async with manager.session() as session:
        return int((await session.execute(select(func.count()).select_from(Event))).scalar_one())


async def test_plan_and_execute_retried_after_commit_write_nothing_twice(
    session_manager: DatabaseSessionManager, engine_simulator: SimulatorServer
) -> None:
    # Arrange
    settings = engine_settings(engine_simulator.base_url)
    async with session_manager.session() as session, session.begin():
        user = await UserRepository(session).get_or_create("activities-user")
        task = await TaskRepository(session).create(
            user_id=user.id, goal="Cook dinner [milestones=2] [plan=sequential]"
        )
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=task.workflow_id, activity_id="7")
    async with LLMClient(settings) as llm:
        agents = AgentActivities(session_manager, llm, settings)
        plan_input = PlanInput(task_id=task.id, model="gpt-4o-mini")

        # Act: the same activity (same workflow and activity id) runs twice.
        first = await env.run(agents.plan, plan_input)
        count = await _event_count(session_manager)
        second = await env.run(agents.plan, plan_input)

        # Assert
        assert first.valid
        assert [m.key for m in first.milestones] == ["m1", "m2"]
        assert second == first
        assert await _event_count(session_manager) == count

        # Act: an execute attempt, retried after its commit.
        env.info = dataclasses.replace(env.info, activity_id="8", attempt=1)
        execute_input = ExecuteInput(
            task_id=task.id,
            model="gpt-4o-mini",
            milestone_id=first.milestones[0].milestone_id,
            milestone_key="m1",
            attempt=1,
            context_budget_tokens=10_000,
        )
        done = await env.run(agents.execute, execute_input)
        count = await _event_count(session_manager)
        env.info = dataclasses.replace(env.info, attempt=2)
        again = await env.run(agents.execute, execute_input)

        # Assert
        assert done.outcome == ExecuteOutcome.DONE
        assert again == done
        assert await _event_count(session_manager) == count
        async with session_manager.session() as session:
            m1 = (
                await session.execute(select(Milestone).where(Milestone.key == "m1"))
            ).scalar_one()
        assert m1.output
        assert m1.output_tokens == done.usage.output_tokens

        # Act: a call whose estimate passes the budget is not made at all.
        env.info = dataclasses.replace(env.info, activity_id="9", attempt=1)
        blocked = await env.run(
            agents.execute,
            execute_input.model_copy(update={"budget": BudgetRemaining(tokens=100)}),
        )

        # Assert
        assert blocked.outcome == ExecuteOutcome.BLOCKED
        assert blocked.blocked is not None
        assert blocked.blocked.estimated_tokens > 100
        assert await _event_count(session_manager) == count


async def test_plan_reask_shows_the_model_its_invalid_answer(
    session_manager: DatabaseSessionManager, engine_simulator: SimulatorServer
) -> None:
    # Arrange: the simulator answers the first two requests of one conversation
    # (model + role + messages before the first assistant turn) with an invalid plan.
    settings = engine_settings(engine_simulator.base_url)
    goal = (
        "Plan a garden [milestones=2][plan=sequential]"
        f"[fault=invalid_plan][invalid=duplicate][fault_count=2] {uuid.uuid4()}"
    )
    async with session_manager.session() as session, session.begin():
        user = await UserRepository(session).get_or_create("activities-user")
        task = await TaskRepository(session).create(user_id=user.id, goal=goal)
    env = ActivityEnvironment()
    async with LLMClient(settings) as llm:
        agents = AgentActivities(session_manager, llm, settings)
        outputs = []
        feedback: str | None = None

        # Act: the workflow's plan loop, one activity id per attempt.
        for attempt in (1, 2, 3):
            env.info = dataclasses.replace(
                env.info, workflow_id=task.workflow_id, activity_id=f"plan-{attempt}", attempt=1
            )
            out = await env.run(
                agents.plan,
                PlanInput(task_id=task.id, model="gpt-4o-mini", attempt=attempt, feedback=feedback),
            )
            outputs.append(out)
            feedback = out.error

        # Assert: a re-ask continues the conversation, so the third answer is valid.
        assert [o.valid for o in outputs] == [False, False, True]
        assert outputs[0].error is not None
        assert "duplicate" in outputs[0].error
        assert [m.key for m in outputs[2].milestones] == ["m1", "m2"]


async def test_execute_of_a_missing_milestone_fails_without_retry(
    session_manager: DatabaseSessionManager, engine_simulator: SimulatorServer
) -> None:
    # Arrange: a task whose milestone rows do not exist (e.g. lost by the database).
    settings = engine_settings(engine_simulator.base_url)
    async with session_manager.session() as session, session.begin():
        user = await UserRepository(session).get_or_create("activities-user")
        task = await TaskRepository(session).create(user_id=user.id, goal="Paint a fence")
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=task.workflow_id, activity_id="3")
    async with LLMClient(settings) as llm:
        agents = AgentActivities(session_manager, llm, settings)

        # Act
        with pytest.raises(ApplicationError) as raised:
            await env.run(
                agents.execute,
                ExecuteInput(
                    task_id=task.id,
                    model="gpt-4o-mini",
                    milestone_id=uuid.uuid4(),
                    milestone_key="m1",
                    attempt=1,
                    context_budget_tokens=10_000,
                ),
            )

    # Assert
    assert raised.value.type == WorkflowErrorType.MILESTONE_NOT_FOUND
    assert raised.value.non_retryable
    assert "'m1'" in str(raised.value)
    assert str(task.id) in str(raised.value)
