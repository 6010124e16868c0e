"""`prune_finished_tasks`: every old finished task pruned in bounded batches, a heartbeat per
batch, running tasks untouched (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from temporalio.testing import ActivityEnvironment

from activities.retention import RetentionActivities
from agent.contract.retention import PruneRequest
from agent.db.models import Event, Task
from agent.db.session import DatabaseSessionManager
from agent.events.types import AgentActivityEvent, EventType, TaskStatus
from agent.repositories.events import EventDraft, EventRepository
from agent.repositories.tasks import TaskRepository
from agent.repositories.users import UserRepository

NOW = datetime(2027, 3, 1, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=30)


async def _task(manager: DatabaseSessionManager, status: TaskStatus, finished: bool) -> UUID:
    async with manager.session() as session, session.begin():
        user = await UserRepository(session).get_or_create("prune-user")
        task = await TaskRepository(session).create(user_id=user.id, goal="g", status=status)
        task.finished_at = CUTOFF - timedelta(days=1) if finished else None
        await EventRepository(session).append(
            [
                EventDraft(
                    idempotency_key=f"{task.id}:{i}",
                    event=AgentActivityEvent(
                        type=EventType.AGENT_STARTED, task_id=task.id, message="x"
                    ),
                )
                for i in range(2)
            ]
        )
        return task.id


async def test_old_tasks_are_pruned_in_batches_with_a_heartbeat_each(
    session_manager: DatabaseSessionManager,
) -> None:
    # Arrange
    old = [await _task(session_manager, TaskStatus.COMPLETED, True) for _ in range(5)]
    running = await _task(session_manager, TaskStatus.RUNNING, False)
    heartbeats: list[tuple[Any, ...]] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: heartbeats.append(details)
    activities = RetentionActivities(session_manager)

    # Act
    summary = await env.run(
        activities.prune_finished_tasks,
        PruneRequest(cutoff=CUTOFF, pruned_at=NOW, batch_tasks=2),
    )
    again = await env.run(
        activities.prune_finished_tasks,
        PruneRequest(cutoff=CUTOFF, pruned_at=NOW, batch_tasks=2),
    )

    # Assert
    assert (summary.tasks, summary.events) == (5, 10)
    assert (again.tasks, again.events) == (0, 0)
    assert heartbeats == [(2, 4), (4, 8), (5, 10)]
    async with session_manager.session() as session:
        counts = dict(
            (
                await session.execute(select(Event.task_id, func.count()).group_by(Event.task_id))
            ).all()
        )
        pruned = set(
            (await session.execute(select(Task.id).where(Task.events_pruned_at == NOW))).scalars()
        )
    assert counts == {running: 2}
    assert pruned == set(old)
