"""A running task stops at its user's daily spend limit, on the time-skipping server.

The limit here is one token a day (`AGENT_USER_DAILY_TOKEN_LIMIT`): each day the task's
first call runs and its next one is refused. With `pause` the task waits at
`budget_exhausted` (scope `user_daily`) until the UTC day resets, which the test server
skips to at once, and goes on; with `fail` it fails with `spend_limit_reached`.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from agent.contract.breakpoints import ResumeAction
from agent.contract.spend import USER_DAILY_SCOPE, SpendLimitAction
from agent.contract.task import ResumeRequest
from agent.db.models import Event
from agent.events.types import BreakpointKind, EventType, TaskStatus
from agent.repositories.spend import SpendRepository, UserSpendLimits
from tests.workflows.conftest import EngineFactory
from tests.workflows.helpers import Recorder, task_row, wait_paused
from workflows.task_workflow import TaskWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

GOAL = "Write docs [milestones=1] [plan=sequential]"
"""Four calls: plan, execute, verify, summarise."""

DAYS = timedelta(days=7)
"""The execution timeout of a task that waits for resets (the server skips the time)."""


def of_type(events: list[Event], type_: EventType) -> list[Event]:
    return [e for e in events if e.type == type_]


async def test_user_daily_limit_pauses_running_task_until_the_window_resets(
    engine_factory: EngineFactory, record_history: Recorder
) -> None:
    # Arrange
    async with engine_factory(user_daily_token_limit=1) as engine:
        handle = await engine.start(GOAL, execution_timeout=DAYS)

        # Act: the plan spends the day's token; the worker's call is refused.
        pause = await wait_paused(handle)
        result = await handle.result()  # the server skips to each reset

        # Assert
        assert pause.kind == BreakpointKind.BUDGET_EXHAUSTED
        assert pause.scope == USER_DAILY_SCOPE
        assert "daily spend limit" in pause.reason
        assert pause.resets_at is not None
        assert pause.resets_at == pause.timeout_at
        assert pause.resets_at - timedelta(days=1) <= pause.hit_at < pause.resets_at
        assert (pause.resets_at.hour, pause.resets_at.minute) == (0, 0)
        assert pause.default_action == ResumeAction.CONTINUE
        assert result.status == TaskStatus.COMPLETED
        events = await engine.events(result.task_id)
        hits = of_type(events, EventType.BREAKPOINT_HIT)
        # Yesterday's spend never counts against today: one call a day, three resets.
        assert [h.details["scope"] for h in hits] == [USER_DAILY_SCOPE] * 3
        assert [h.details["kind"] for h in hits] == ["budget_exhausted"] * 3
        resets = [h.details["resets_at"] for h in hits]
        assert resets == sorted(set(resets))
        assert len(of_type(events, EventType.TASK_PAUSED)) == 3
        resumed = of_type(events, EventType.BREAKPOINT_RESUMED)
        assert [(r.details["action"], r.details["timed_out"]) for r in resumed] == [
            ("continue", True)
        ] * 3
        await record_history(handle)


async def test_user_daily_limit_fails_running_task_when_set_to_fail(
    engine_factory: EngineFactory, record_history: Recorder
) -> None:
    # Arrange
    async with engine_factory(
        user_daily_token_limit=1, spend_limit_action=SpendLimitAction.FAIL
    ) as engine:
        handle = await engine.start(GOAL, execution_timeout=DAYS)

        # Act
        result = await handle.result()

        # Assert
        assert (result.status, result.failure_reason) == (
            TaskStatus.FAILED,
            "spend_limit_reached",
        )
        task = await task_row(engine, result.task_id)
        assert "daily spend limit is reached" in (task.error or "")
        assert "resets at" in (task.error or "")
        events = await engine.events(result.task_id)
        assert of_type(events, EventType.BREAKPOINT_HIT) == []
        await record_history(handle)


async def test_person_resumes_before_the_reset_once_the_limit_is_raised(
    engine_factory: EngineFactory, record_history: Recorder
) -> None:
    # Arrange
    async with engine_factory(user_daily_token_limit=1) as engine:
        handle = await engine.start(GOAL, execution_timeout=DAYS)
        pause = await wait_paused(handle)
        async with engine.session_manager.session() as session, session.begin():
            await SpendRepository(session).set_limits(
                engine.user_id, UserSpendLimits(daily_token_limit=10**9, daily_cost_limit_usd=None)
            )

        # Act
        await handle.execute_update(
            TaskWorkflow.resume,
            ResumeRequest(breakpoint_id=pause.breakpoint_id, action=ResumeAction.CONTINUE),
        )
        result = await handle.result()

        # Assert
        assert result.status == TaskStatus.COMPLETED
        events = await engine.events(UUID(handle.id.removeprefix("task-")))
        assert len(of_type(events, EventType.BREAKPOINT_HIT)) == 1
        resumed = of_type(events, EventType.BREAKPOINT_RESUMED)
        assert [(r.details["action"], r.details["timed_out"]) for r in resumed] == [
            ("continue", False)
        ]
        await record_history(handle)
