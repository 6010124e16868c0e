"""RetentionRepository: only tasks finished before the cut-off lose their events and outputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agent.db.models import Event, Milestone, Task
from agent.events.types import AgentActivityEvent, EventType, MilestoneStatus, TaskStatus
from agent.repositories.events import EventDraft, EventRepository
from agent.repositories.retention import RetentionRepository
from tests.agent.repositories.conftest import TaskFactory

NOW = datetime(2027, 3, 1, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=30)


async def _task_with_log(
    session: AsyncSession,
    make_task: TaskFactory,
    status: TaskStatus,
    finished_at: datetime | None,
) -> Task:
    """A task with three events, one milestone with an output, and totals."""
    task = await make_task(session_id=uuid4(), status=status)
    task.finished_at = finished_at
    task.input_tokens, task.output_tokens, task.cost_usd = 100, 50, 0.25
    session.add(
        Milestone(
            task_id=task.id,
            key="m1",
            title="Do m1",
            position=0,
            status=MilestoneStatus.PASSED,
            output="the output",
            input_tokens=100,
            output_tokens=50,
        )
    )
    drafts = [
        EventDraft(
            idempotency_key=f"{task.id}:{i}",
            event=AgentActivityEvent(type=EventType.AGENT_STARTED, task_id=task.id, message="x"),
        )
        for i in range(3)
    ]
    await EventRepository(session).append(drafts)
    await session.commit()
    return task


async def _events(session: AsyncSession, task: Task) -> int:
    return int(
        (
            await session.execute(
                select(func.count()).select_from(Event).where(Event.task_id == task.id)
            )
        ).scalar_one()
    )


async def test_only_finished_tasks_older_than_the_cutoff_are_pruned(
    session: AsyncSession, make_task: TaskFactory
) -> None:
    # Arrange
    old_done = await _task_with_log(
        session, make_task, TaskStatus.COMPLETED, CUTOFF - timedelta(days=1)
    )
    old_failed = await _task_with_log(
        session, make_task, TaskStatus.FAILED, CUTOFF - timedelta(days=9)
    )
    recent = await _task_with_log(
        session, make_task, TaskStatus.COMPLETED, CUTOFF + timedelta(days=1)
    )
    running = await _task_with_log(session, make_task, TaskStatus.RUNNING, None)
    paused = await _task_with_log(session, make_task, TaskStatus.PAUSED, None)

    # Act
    result = await RetentionRepository(session).prune_finished_before(CUTOFF, NOW)
    await session.commit()
    again = await RetentionRepository(session).prune_finished_before(CUTOFF, NOW)
    await session.commit()

    # Assert
    assert (result.tasks, result.events, result.outputs) == (2, 6, 2)
    assert (again.tasks, again.events, again.outputs) == (0, 0, 0)
    session.expire_all()
    for pruned in (old_done, old_failed):
        await session.refresh(pruned)
        assert await _events(session, pruned) == 0
        assert pruned.events_pruned_at == NOW
        assert (pruned.input_tokens, pruned.output_tokens, pruned.cost_usd) == (100, 50, 0.25)
        assert pruned.last_event_seq == 3
        milestone = (
            await session.execute(select(Milestone).where(Milestone.task_id == pruned.id))
        ).scalar_one()
        assert milestone.output is None
        assert milestone.input_tokens == 100
    for kept in (recent, running, paused):
        await session.refresh(kept)
        assert await _events(session, kept) == 3
        assert kept.events_pruned_at is None
        milestone = (
            await session.execute(select(Milestone).where(Milestone.task_id == kept.id))
        ).scalar_one()
        assert milestone.output == "the output"
