"""How tasks appear in answers: links, listing and detail shapes, pre-serialised JSON."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from uuid import UUID

from fastapi import Request, Response

from agent.contract.task import Budget, PauseState, Totals
from agent.contract.tools import (
    TOOL_RESULT_PREVIEW_CHARS,
    ToolCallStatus,
    ToolCallView,
    ToolSpec,
)
from agent.db.models import Task, ToolCallRecord
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
        tools_requested=row.tools_requested,
        tools=(
            [ToolSpec.model_validate(spec) for spec in row.tools] if row.tools is not None else None
        ),
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
            # Only the detail statement counts them (`load_task_detail`); listings show 0.
            tool_calls=getattr(task, "tool_calls_made", 0) or 0,
        ),
        "failure_reason": task.failure_reason,
        "last_event_seq": task.last_event_seq,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "events_pruned_at": task.events_pruned_at,
        "links": _links(request, task.id),
    }


def to_tool_call_view(row: ToolCallRecord) -> ToolCallView:
    """Render one stored tool call: its result cut to a preview, its duration in ms.

    Args:
        row: The `tool_calls` row.

    Returns:
        The call as `GET /v1/tasks/{id}/tool-calls` lists it.
    """
    result = row.result
    preview = None
    if result is not None:
        preview = (
            result
            if len(result) <= TOOL_RESULT_PREVIEW_CHARS
            else result[: TOOL_RESULT_PREVIEW_CHARS - 1] + "…"
        )
    duration_ms = None
    if row.started_at is not None and row.finished_at is not None and row.executions > 0:
        duration_ms = max(0, round((row.finished_at - row.started_at).total_seconds() * 1000))
    return ToolCallView(
        id=row.id,
        milestone_key=row.milestone_key,
        attempt=row.attempt,
        turn=row.turn,
        position=row.position,
        call_id=row.call_id,
        function_name=row.function_name,
        server=row.server,
        tool=row.tool,
        arguments=row.arguments,
        status=ToolCallStatus(row.status),
        executions=row.executions,
        result_preview=preview,
        result_chars=len(result or ""),
        is_error=row.is_error,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_ms=duration_ms,
    )
