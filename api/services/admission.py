"""The API's side of running-task quotas: queue a task, withdraw it, apply a new quota.

Every call goes to the user's `AdmissionWorkflow` (`admission-{user_id}`), started by the
same call when it is not running (signal-with-start), so no call is lost between runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from agent.config import Settings
from agent.contract.admission import (
    AdmissionInput,
    AdmissionRequest,
    QueuedTask,
    QuotaChange,
    admission_workflow_id,
)
from agent.contract.task import TaskInput
from agent.db.models import Task
from agent.events.types import TaskStatus
from agent.repositories.quotas import QuotaRepository
from workflows.admission_workflow import AdmissionWorkflow

logger = structlog.get_logger(__name__)


async def effective_quota(db: AsyncSession, user_id: UUID, settings: Settings | None) -> int | None:
    """The user's running-task quota: their own, else `AGENT_USER_MAX_RUNNING_TASKS`."""
    own = await QuotaRepository(db).max_running_of(user_id)
    if own is not None:
        return own
    return settings.user_max_running_tasks if settings is not None else None


async def submit_to_admission(
    client: Client, task_queue: str, task: Task, task_input: TaskInput, max_running: int | None
) -> None:
    """Queue a stored `queued` task with its user's admission workflow (idempotent)."""
    request = AdmissionRequest(
        entry=QueuedTask(task=task_input, created_at=task.created_at), max_running=max_running
    )
    await client.start_workflow(
        AdmissionWorkflow.run,
        AdmissionInput(user_id=task.user_id, max_running=max_running),
        id=admission_workflow_id(task.user_id),
        task_queue=task_queue,
        start_signal="submit",
        start_signal_args=[request],
    )
    logger.info("task_queued", task_id=str(task.id), user_id=str(task.user_id))


async def withdraw_from_admission(client: Client, task_queue: str, task: Task) -> None:
    """Ask the user's admission workflow to cancel a task that was queued when last read."""
    await client.start_workflow(
        AdmissionWorkflow.run,
        AdmissionInput(user_id=task.user_id),
        id=admission_workflow_id(task.user_id),
        task_queue=task_queue,
        start_signal="withdraw",
        start_signal_args=[task.id],
    )


async def notify_quota_change(client: Client, user_id: UUID, max_running: int | None) -> None:
    """Apply an admin's new quota to the tasks already queued (nothing when none are)."""
    handle = client.get_workflow_handle_for(AdmissionWorkflow.run, admission_workflow_id(user_id))
    try:
        await handle.signal(AdmissionWorkflow.set_quota, QuotaChange(max_running=max_running))
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


class _TaskLike(Protocol):
    """A task row (`Task`, or a Core row with its columns)."""

    @property
    def id(self) -> UUID: ...

    @property
    def status(self) -> str: ...


async def queue_positions(
    db: AsyncSession, user_id: UUID, tasks: Iterable[_TaskLike]
) -> dict[UUID, int]:
    """Queue positions of those of `tasks` that are queued (one statement, none if none)."""
    queued = [task.id for task in tasks if task.status == TaskStatus.QUEUED]
    return await QuotaRepository(db).queue_positions(user_id, queued) if queued else {}
