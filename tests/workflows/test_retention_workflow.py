"""Retention run by Temporal's scheduler: a worker started with `AGENT_EVENT_RETENTION_DAYS`
keeps the Schedule, and a triggered run prunes only the tasks finished before the cut-off
(real worker process code, PostgreSQL and Temporal dev server)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

from pydantic import SecretStr
from sqlalchemy import func, select
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from agent.config import Settings
from agent.contract.retention import RETENTION_SCHEDULE_ID, PruneSummary
from agent.db.models import Event, Task
from agent.db.session import DatabaseSessionManager
from agent.events.types import AgentActivityEvent, EventType, TaskStatus
from agent.repositories.events import EventDraft, EventRepository
from agent.repositories.tasks import TaskRepository
from agent.repositories.users import UserRepository
from agent.schedules import RETENTION_AT, RETENTION_EVERY
from agent.temporal import data_converter, ensure_search_attributes
from agent.worker import run_worker
from tests.namespaces import new_namespace
from tests.polling import wait_until
from tests.recorded_histories import RECORDED_RETENTION_HISTORIES, record_history

EVENTS_PER_TASK = 5
RETENTION_DAYS = 30


async def _task_with_events(
    manager: DatabaseSessionManager, status: TaskStatus, finished_days_ago: float | None
) -> UUID:
    async with manager.session() as session, session.begin():
        user = await UserRepository(session).get_or_create("retention-user")
        task = await TaskRepository(session).create(user_id=user.id, goal="g", status=status)
        if finished_days_ago is not None:
            task.finished_at = datetime.now(UTC) - timedelta(days=finished_days_ago)
        await EventRepository(session).append(
            [
                EventDraft(
                    idempotency_key=f"{task.id}:{i}",
                    event=AgentActivityEvent(
                        type=EventType.AGENT_STARTED, task_id=task.id, message="x"
                    ),
                )
                for i in range(EVENTS_PER_TASK)
            ]
        )
        return task.id


async def _event_count(manager: DatabaseSessionManager, task_id: UUID) -> int:
    async with manager.session() as session:
        stmt = select(func.count()).select_from(Event).where(Event.task_id == task_id)
        return int((await session.execute(stmt)).scalar_one())


async def _pruned_at(manager: DatabaseSessionManager, task_id: UUID) -> datetime | None:
    async with manager.session() as session:
        stmt = select(Task.events_pruned_at).where(Task.id == task_id)
        return (await session.execute(stmt)).scalar_one()


async def test_a_triggered_schedule_prunes_only_old_finished_tasks(
    database_url: str,
    session_manager: DatabaseSessionManager,
    temporal_dev_env: WorkflowEnvironment,
) -> None:
    # Arrange
    target = temporal_dev_env.client.service_client.config.target_host
    namespace = await new_namespace(temporal_dev_env.client, "retention")
    client = await Client.connect(target, namespace=namespace, data_converter=data_converter)
    await ensure_search_attributes(client, namespace)
    old = await _task_with_events(session_manager, TaskStatus.COMPLETED, RETENTION_DAYS + 5)
    recent = await _task_with_events(session_manager, TaskStatus.FAILED, RETENTION_DAYS - 5)
    running = await _task_with_events(session_manager, TaskStatus.RUNNING, None)
    settings = Settings(
        _env_file=None,
        database_url=SecretStr(database_url),
        temporal_address=target,
        temporal_namespace=namespace,
        task_queue=f"retention-{uuid.uuid4().hex[:12]}",
        llm_base_url="http://127.0.0.1:9/v1",
        event_retention_days=RETENTION_DAYS,
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop=stop))
    schedule = client.get_schedule_handle(RETENTION_SCHEDULE_ID)
    try:

        async def scheduled() -> bool:
            assert not worker.done(), worker.exception()
            try:
                await schedule.describe()
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return False
                raise
            return True

        await wait_until(scheduled, "the retention schedule")
        described = await schedule.describe()

        # Act
        await schedule.trigger()

        async def ran() -> bool:
            assert not worker.done(), worker.exception()
            return bool((await schedule.describe()).info.recent_actions)

        await wait_until(ran, "a run of the retention schedule")
        action = (await schedule.describe()).info.recent_actions[-1].action
        assert isinstance(action, ScheduleActionExecutionStartWorkflow)
        run = client.get_workflow_handle(action.workflow_id, result_type=PruneSummary)
        summary = await run.result()
        await record_history(run, RECORDED_RETENTION_HISTORIES, "triggered_prune")
    finally:
        stop.set()
        await worker

    # Assert
    assert described.schedule.spec.intervals == [
        ScheduleIntervalSpec(every=RETENTION_EVERY, offset=RETENTION_AT)
    ]
    assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    assert (summary.tasks, summary.events) == (1, EVENTS_PER_TASK)
    assert await _event_count(session_manager, old) == 0
    assert await _pruned_at(session_manager, old) is not None
    for kept in (recent, running):
        assert await _event_count(session_manager, kept) == EVENTS_PER_TASK
        assert await _pruned_at(session_manager, kept) is None
