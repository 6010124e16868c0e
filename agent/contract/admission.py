"""Admission of a user's tasks under their running-task quota (shared by API and workflow).

The API hands each task of a user with a quota to the user's `AdmissionWorkflow`
(`admission_workflow_id`), which starts it when one of the user's slots is free, in
submission order (creation time, then id: the order queue positions are counted in).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from agent.contract.task import TaskInput

ADMISSION_WORKFLOW_PREFIX = "admission-"


def admission_workflow_id(user_id: UUID) -> str:
    """The id of the user's admission workflow (one per user)."""
    return f"{ADMISSION_WORKFLOW_PREFIX}{user_id}"


class QueuedTask(BaseModel):
    """A task waiting for a slot: what starts its workflow, and its place in the queue."""

    task: TaskInput
    created_at: datetime
    """The task row's creation time: with the task id, the queue's order."""

    def order_key(self) -> tuple[datetime, str]:
        """Sort key of the queue: creation time, then task id (as SQL orders them)."""
        return (self.created_at, str(self.task.task_id))


class AdmissionRequest(BaseModel):
    """Signal `submit`: queue a task; carries the user's quota as the API read it."""

    entry: QueuedTask
    max_running: int | None = Field(default=None, ge=1)


class QuotaChange(BaseModel):
    """Signal `set_quota`: an admin changed the user's quota (None: unlimited)."""

    max_running: int | None = Field(default=None, ge=1)


class AdmissionInput(BaseModel):
    """Input of `AdmissionWorkflow.run` (also what a continue-as-new carries over)."""

    user_id: UUID
    max_running: int | None = Field(default=None, ge=1)
    queue: list[QueuedTask] = Field(default_factory=list)
    carried_running: list[UUID] = Field(default_factory=list)
    """Tasks an earlier run started that were still running: watched until they close."""
    continue_as_new_after: int | None = Field(default=None, ge=1)
    """Admissions before the run continues as new (None: the workflow's default)."""


class AdmissionState(BaseModel):
    """Query `state`: the queue in order and the tasks holding slots."""

    max_running: int | None
    queued: list[UUID]
    running: list[UUID]
