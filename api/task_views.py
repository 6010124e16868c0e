"""How tasks appear in answers: links, listing and detail shapes, pre-serialised JSON."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from uuid import UUID

from fastapi import Request, Response

from agent.contract.task import Budget, PauseState, Totals
from agent.db.models import Task
from agent.events.types import BreakpointKind, TaskComplexity, TaskStatus
from api.schemas import MilestoneOut, TaskDetail, TaskLinks, TaskOut

JSON_MEDIA_TYPE = "application/json"


def json_response(model: TaskOut, status_code: int = HTTPStatus.OK) -> Response:
    """Answer with an already validated model, skipping FastAPI's second validation pass.

    The route still declares `response_model`, so the OpenAPI schema is unchanged.

    Args:
        model: The task (or task detail) to answer with.
        status_code: The HTTP status.

    Returns:
        The JSON response.
    """
    return Response(model.model_dump_json(), status_code=status_code, media_type=JSON_MEDIA_TYPE)


def to_task_out(task: Task, request: Request, queue_position: int | None = None) -> TaskOut:
    """Render a task for listings.

    Args:
        task: The task row.
        request: The request being answered (its URL roots the links).
        queue_position: Its place in its user's queue, while `queued`.

    Returns:
        The task as listed.
    """
    return TaskOut(**_task_fields(task, request), queue_position=queue_position)


def to_task_detail(row: Any, request: Request, queue_position: int | None = None) -> TaskDetail:
    """Render a task with its milestones, pause state, result and error.

    Args:
        row: A row of `load_task_detail` (the task's columns plus `milestones`).
        request: The request being answered (its URL roots the links).
        queue_position: Its place in its user's queue, while `queued`.

    Returns:
        The task in detail.
    """
    paused = None
    if row.status == TaskStatus.PAUSED and row.pause_state:
        paused = PauseState.model_validate(row.pause_state)
    return TaskDetail(
        **_task_fields(row, request),
        milestones=[MilestoneOut.model_validate(m) for m in row.milestones],
        paused=paused,
        result=row.result,
        error=row.error,
        queue_position=queue_position,
    )


def _links(request: Request, task_id: UUID) -> TaskLinks:
    base = f"/v1/tasks/{task_id}"
    ws_scheme = "wss" if request.url.scheme == "https" else "ws"
    return TaskLinks(
        self=base,
        events=f"{base}/events",
        events_ws=f"{ws_scheme}://{request.url.netloc}{base}/events/ws",
        resume=f"{base}/resume",
        cancel=f"{base}/cancel",
    )


def _task_fields(task: Any, request: Request) -> dict[str, Any]:
    # `task` is a `Task` or a Core row with the same column names.
    return {
        "id": task.id,
        "session_id": task.session_id,
        "goal": task.goal,
        "status": task.status,
        "complexity": TaskComplexity(task.complexity) if task.complexity else None,
        "workflow_id": task.workflow_id,
        "breakpoints": [BreakpointKind(b) for b in task.breakpoints or []],
        "budget": Budget(
            max_cost_usd=task.max_cost_usd,
            max_tokens=task.max_tokens,
            max_tool_calls=task.max_tool_calls,
        ),
        "max_parallel": task.max_parallel,
        "max_attempts": task.max_attempts,
        "totals": Totals(
            input_tokens=task.input_tokens,
            output_tokens=task.output_tokens,
            cost_usd=task.cost_usd,
            cost_unknown=task.cost_unknown,
            estimated=task.usage_estimated,
        ),
        "failure_reason": task.failure_reason,
        "last_event_seq": task.last_event_seq,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "links": _links(request, task.id),
    }
