"""Resume and cancel a task's workflow, mapping Temporal's answers to API errors."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from typing import Any
from uuid import UUID

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from agent.contract.errors import ErrorCode, WorkflowErrorType
from agent.contract.task import ResumeRequest, ResumeResult
from agent.db.models import Task
from agent.events.types import TaskStatus
from agent.observability.links import link_current_span_to_task
from api.errors import ApiError
from api.schemas import ResumeBody
from api.services.admission import withdraw_from_admission
from workflows.task_workflow import TaskWorkflow

UPDATE_RPC_TIMEOUT = timedelta(seconds=30)
"""A paused workflow answers at once; longer means no worker is polling."""
_GONE_STATUSES = (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION)
"""What Temporal answers when the workflow execution is no longer running."""


async def resume_workflow(
    client: Client, task: Task, decision: ResumeBody, user_id: UUID
) -> ResumeResult:
    """Answer the breakpoint the task waits at (the workflow's validated `resume` update).

    Args:
        client: The Temporal client.
        task: The caller's task, as last stored.
        decision: The caller's decision.
        user_id: The caller, recorded with the decision.

    Returns:
        What the workflow did.

    Raises:
        ApiError: 409 when the task is finished, not paused, or the workflow's validator
            rejects the decision (without touching its history).
    """
    # Its own trace (a new request); linked to the task's, refused or not.
    link_current_span_to_task(task.traceparent)
    if TaskStatus(task.status).is_terminal:
        raise _finished(task)
    if task.status != TaskStatus.PAUSED:
        # The row is written with the pause event; the validator still guards the race.
        raise ApiError(
            HTTPStatus.CONFLICT,
            ErrorCode.TASK_NOT_PAUSED,
            f"the task is not paused (status: {task.status})",
            {"status": task.status},
        )
    request = ResumeRequest(**decision.model_dump(), user_id=user_id)
    try:
        return await _handle(client, task).execute_update(
            TaskWorkflow.resume, request, rpc_timeout=UPDATE_RPC_TIMEOUT
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        reason = getattr(cause, "message", None) or str(cause or exc)
        error_type = getattr(cause, "type", None)
        code = (
            ErrorCode.TASK_NOT_PAUSED
            if error_type == WorkflowErrorType.TASK_NOT_PAUSED
            else ErrorCode.RESUME_REJECTED
        )
        raise ApiError(HTTPStatus.CONFLICT, code, reason, {"type": error_type}) from exc
    except RPCError as exc:
        if exc.status in _GONE_STATUSES:
            raise ApiError(
                HTTPStatus.CONFLICT, ErrorCode.TASK_NOT_PAUSED, "the task is not running"
            ) from exc
        raise


async def cancel_workflow(client: Client, task: Task, task_queue: str) -> None:
    """Request cancellation of the task's workflow (of its place in the queue when queued).

    Args:
        client: The Temporal client.
        task: The caller's task, as last stored.
        task_queue: The workers' task queue (a queued task's admission workflow runs there).

    Raises:
        ApiError: 409 when the task is finished or its workflow no longer runs.
    """
    link_current_span_to_task(task.traceparent)
    if TaskStatus(task.status).is_terminal:
        raise _finished(task)
    if task.status == TaskStatus.QUEUED:
        # Its workflow may not exist yet; the admission workflow decides, in order with
        # the admission that might be starting it right now.
        await withdraw_from_admission(client, task_queue, task)
        return
    try:
        await _handle(client, task).cancel()
    except RPCError as exc:
        if exc.status in _GONE_STATUSES:
            raise ApiError(
                HTTPStatus.CONFLICT, ErrorCode.TASK_FINISHED, "the task is no longer running"
            ) from exc
        raise


def _finished(task: Task) -> ApiError:
    return ApiError(
        HTTPStatus.CONFLICT,
        ErrorCode.TASK_FINISHED,
        f"the task is {task.status}; it can no longer change",
        {"status": task.status},
    )


def _handle(client: Client, task: Task) -> WorkflowHandle[TaskWorkflow, Any]:
    return client.get_workflow_handle_for(TaskWorkflow.run, task.workflow_id)
