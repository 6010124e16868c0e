"""`TASK_PROGRESS` counts every milestone that finished, even when two finish together."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from sqlalchemy import func, select, text
from temporalio.testing import ActivityEnvironment

from activities.models import MilestoneMarkInput
from activities.task_activities import TaskActivities
from agent.contract.task import MilestoneSpec
from agent.db.models import Task
from agent.db.session import DatabaseSessionManager
from agent.events.types import EventType, MilestoneStatus
from agent.repositories.events import EventRepository
from agent.repositories.milestones import MilestoneRepository
from agent.repositories.tasks import TaskRepository
from agent.repositories.users import UserRepository
from tests.workflows.conftest import engine_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

POLL_SECONDS = 0.02


async def _waiting_on_locks(manager: DatabaseSessionManager) -> int:
    """Backends of this database waiting for a lock (row or advisory)."""
    async with manager.session() as session:
        value = await session.scalar(
            select(func.count())
            .select_from(text("pg_stat_activity"))
            .where(
                text("datname = current_database()"),
                text("wait_event_type = 'Lock'"),
            )
        )
    return int(value or 0)


async def test_parallel_milestones_finishing_together_count_each_other(
    session_manager: DatabaseSessionManager,
) -> None:
    # Arrange: a task with two parallel milestones, both running.
    session_id = uuid.uuid4()
    async with session_manager.session() as session, session.begin():
        user = await UserRepository(session).get_or_create("progress-user")
        task = await TaskRepository(session).create(
            user_id=user.id, goal="Two at once", session_id=session_id
        )
        rows = await MilestoneRepository(session).replace_plan(
            task.id,
            [MilestoneSpec(key="m1", title="One"), MilestoneSpec(key="m2", title="Two")],
        )
    ids = {row.key: row.id for row in rows}
    activities = TaskActivities(session_manager, engine_settings("http://unused/v1"))

    async def skip(key: str) -> None:
        env = ActivityEnvironment()
        env.info = dataclasses.replace(
            env.info, workflow_id=task.workflow_id, activity_id=f"mark-{key}"
        )
        await env.run(
            activities.mark_milestone,
            MilestoneMarkInput(
                task_id=task.id,
                session_id=session_id,
                milestone_id=ids[key],
                milestone_key=key,
                status=MilestoneStatus.SKIPPED,
                reason="test",
                report_progress=True,
            ),
        )

    # Act: hold the task row so both activities are inside their transactions at once
    # (each has updated its own milestone), then let them go.
    async with session_manager.session() as blocker, blocker.begin():
        await blocker.execute(select(Task.id).where(Task.id == task.id).with_for_update())
        marks = [asyncio.create_task(skip("m1")), asyncio.create_task(skip("m2"))]
        while await _waiting_on_locks(session_manager) < len(marks):
            await asyncio.sleep(POLL_SECONDS)
    await asyncio.gather(*marks)

    # Assert: the second progress event saw the first milestone done.
    async with session_manager.session() as session:
        events = await EventRepository(session).list_after(task.id, 0)
    progress = [e for e in events if e.type == EventType.TASK_PROGRESS]
    assert sorted(e.details["done"] for e in progress) == [1, 2]
    assert progress[-1].message == "2/2 milestones done"
